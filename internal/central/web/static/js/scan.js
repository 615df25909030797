// scan.js: the scan page. The rear camera (preferred) shows in the page
// with a framing guide; frames are decoded in the page (qrdecode.js) until
// one holds a QR code, whose text is posted to /preview. No camera, or a
// camera refused: a clear message and the typed-code path.
import { createDecoder, grab } from './qrdecode.js';
import { say } from './api.js';

const video = document.getElementById('video');
const canvas = document.getElementById('canvas');
const form = document.getElementById('scanned');

function noCamera(title, text) {
  document.getElementById('camera').hidden = true;
  document.getElementById('no-camera-title').textContent = title;
  document.getElementById('no-camera-text').textContent = text;
  document.getElementById('no-camera').hidden = false;
  say(title, 'error');
}

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw Object.assign(new Error('no camera API'), { name: 'NotSupportedError' });
  }
  return navigator.mediaDevices.getUserMedia({
    audio: false,
    video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } },
  });
}

function nextFrame() {
  return new Promise((resolve) => {
    if ('requestVideoFrameCallback' in video) {
      video.requestVideoFrameCallback(() => resolve());
    } else {
      requestAnimationFrame(() => resolve());
    }
  });
}

async function scan() {
  let stream;
  try {
    stream = await openCamera();
  } catch (err) {
    if (err.name === 'NotAllowedError' || err.name === 'SecurityError') {
      noCamera('Camera not allowed', 'The tablet refused the camera to this page. Allow the camera for this site in the browser’s settings, or type the code.');
    } else if (err.name === 'NotFoundError' || err.name === 'OverconstrainedError') {
      noCamera('No camera found', 'This tablet has no camera this page can use.');
    } else {
      noCamera('Camera not available', 'The camera could not be started (' + err.name + ').');
    }
    return;
  }
  video.srcObject = stream;
  await video.play();
  const decoder = await createDecoder();
  say('Point the camera at the monitor’s QR code.');
  document.body.dataset.scanner = decoder.engine;
  for (;;) {
    await nextFrame();
    let text = null;
    try {
      text = await decoder.decode(grab(video, canvas));
    } catch {
      text = null;
    }
    if (text !== null) {
      stream.getTracks().forEach((t) => t.stop());
      say('QR code read. Checking the device…', 'ok');
      document.getElementById('qr').value = text;
      form.submit();
      return;
    }
  }
}

scan();
