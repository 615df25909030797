// Test page for the browser kit: opens the camera, and reads pixels of
// its frames back for the Go test.
const video = document.getElementById('video');
const canvas = document.getElementById('canvas');

async function open(constraints) {
  try {
    const stream = await navigator.mediaDevices.getUserMedia(constraints || { video: true });
    video.srcObject = stream;
    await video.play();
    // Wait for a decoded frame, not just metadata.
    await new Promise((resolve) => video.requestVideoFrameCallback(() => resolve()));
    return { ok: true, width: video.videoWidth, height: video.videoHeight };
  } catch (e) {
    return { ok: false, name: e.name, message: e.message };
  }
}

// pixels returns the RGB of the current frame at each [x, y].
function pixels(points) {
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(video, 0, 0);
  return points.map(([x, y]) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3)));
}

window.cameraTest = {
  open,
  pixels,
  secure: () => window.isSecureContext,
};
