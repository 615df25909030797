// scan.js: the scan page. The rear camera (preferred) shows in the page
// with a framing guide; frames are decoded in the page (qrdecode.js) until
// one holds a QR code, whose text is posted to /preview. No camera, or a
// camera refused: a clear message and the typed-code path (camera.js).
import { createDecoder } from './qrdecode.js';
import { openCamera, eachCode } from './camera.js';
import { say } from './api.js';

const video = document.getElementById('video');
const canvas = document.getElementById('canvas');
const form = document.getElementById('scanned');

async function scan() {
  const stream = await openCamera(video);
  if (!stream) {
    return;
  }
  const decoder = await createDecoder();
  say('Point the camera at the monitor’s QR code.');
  document.body.dataset.scanner = decoder.engine;
  await eachCode(video, canvas, decoder, (text) => {
    stream.getTracks().forEach((t) => t.stop());
    say('QR code read. Checking the device…', 'ok');
    document.getElementById('qr').value = text;
    form.submit();
    return false;
  });
}

scan();
