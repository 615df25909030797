// Test page: the web app's decoder (static/js/qrdecode.js) reading the fake
// camera, frame after frame, as the scan page will.
import { createDecoder, grab } from '/static/js/qrdecode.js';

const video = document.getElementById('video');
const canvas = document.getElementById('canvas');

// scan opens the camera and decodes frames until one gives a QR code or
// maxFrames have been tried. It reports the text, the engine and how many
// frames it took.
async function scan({ maxFrames = 60, native = true } = {}) {
  const decoder = await createDecoder({ native });
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } },
  });
  video.srcObject = stream;
  await video.play();
  try {
    for (let frames = 1; frames <= maxFrames; frames++) {
      await new Promise((resolve) => video.requestVideoFrameCallback(() => resolve()));
      const text = await decoder.decode(grab(video, canvas));
      if (text !== null) {
        return { text, engine: decoder.engine, frames, width: video.videoWidth, height: video.videoHeight };
      }
    }
    return { text: null, engine: decoder.engine, frames: maxFrames, width: video.videoWidth, height: video.videoHeight };
  } finally {
    stream.getTracks().forEach((t) => t.stop());
  }
}

window.scanTest = { scan };
