// camera.js: the camera for the scan and batch pages: the rear camera
// (preferred) at 1280×720, one frame at a time, and a clear message when
// there is none or it is refused (the page's #camera and #no-camera).
import { say } from './api.js';
import { grab } from './qrdecode.js';

// openCamera starts the camera in video and resolves to its stream; when
// it cannot, it shows why (and the typed-code path) and resolves to null.
export async function openCamera(video) {
  let stream;
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error('no camera API'), { name: 'NotSupportedError' });
    }
    stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } },
    });
  } catch (err) {
    if (err.name === 'NotAllowedError' || err.name === 'SecurityError') {
      noCamera('Camera not allowed', 'The tablet refused the camera to this page. Allow the camera for this site in the browser’s settings, or type the code.');
    } else if (err.name === 'NotFoundError' || err.name === 'OverconstrainedError') {
      noCamera('No camera found', 'This tablet has no camera this page can use.');
    } else {
      noCamera('Camera not available', 'The camera could not be started (' + err.name + ').');
    }
    return null;
  }
  video.srcObject = stream;
  await video.play();
  return stream;
}

function noCamera(title, text) {
  document.getElementById('camera').hidden = true;
  document.getElementById('no-camera-title').textContent = title;
  document.getElementById('no-camera-text').textContent = text;
  document.getElementById('no-camera').hidden = false;
  say(title, 'error');
}

// nextFrame resolves when video has a new frame.
export function nextFrame(video) {
  return new Promise((resolve) => {
    if ('requestVideoFrameCallback' in video) {
      video.requestVideoFrameCallback(() => resolve());
    } else {
      requestAnimationFrame(() => resolve());
    }
  });
}

// eachCode decodes video's frames one by one (drawn on canvas) and calls
// handle with the text of each QR code read, awaiting it; it returns
// when handle returns false.
export async function eachCode(video, canvas, decoder, handle) {
  for (;;) {
    await nextFrame(video);
    let text = null;
    try {
      text = await decoder.decode(grab(video, canvas));
    } catch {
      text = null;
    }
    if (text !== null && (await handle(text)) === false) {
      return;
    }
  }
}
