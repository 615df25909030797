// Test and benchmark page: one QR decoder, fed camera frames by URL. The
// time of a frame runs from drawing its pixels on the canvas (what a scan
// page does with each video frame) to the decoder's answer.
import { createDecoder, grab } from '/static/js/qrdecode.js';

const canvas = document.getElementById('canvas');
let decode = null;

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error('cannot load ' + src));
    document.head.append(s);
  });
}

// Each loader returns the engine's name and a function from the canvas
// holding the frame (and its ImageData) to the QR text or null.
const loaders = {
  // The web app's decoder, as the scan page uses it.
  'zxing-wasm': async () => {
    const d = await createDecoder({ native: false });
    return [d.engine, async (cv, imageData) => d.decode(imageData)];
  },
  // The BarcodeDetector polyfill (on zxing-wasm) with its defaults.
  'barcode-detector': async ({ dir, wasm }) => {
    const m = await import(`/testdata/decoders/${dir}/es/ponyfill.js`);
    await m.prepareZXingModule({ overrides: { locateFile: () => wasm }, fireImmediately: true });
    const det = new m.BarcodeDetector({ formats: ['qr_code'] });
    return ['barcode-detector', async (cv, imageData) => {
      const found = await det.detect(imageData);
      return found.length > 0 ? found[0].rawValue : null;
    }];
  },
  // qr-scanner with its defaults: a Web Worker (from a blob: URL) running
  // its jsQR fork on the frame scaled down to 400×400.
  'qr-scanner': async ({ dir }) => {
    const QrScanner = (await import(`/testdata/decoders/${dir}/qr-scanner.min.js`)).default;
    const engine = await QrScanner.createQrEngine();
    return ['qr-scanner', async (cv) => {
      try {
        return (await QrScanner.scanImage(cv, { qrEngine: engine, returnDetailedScanResult: true })).data;
      } catch (e) {
        return null;
      }
    }];
  },
  // jsQR on the full frame, the usual way: dark code on light ground only.
  'jsqr': async ({ dir }) => {
    await loadScript(`/testdata/decoders/${dir}/jsQR.js`);
    return ['jsqr', async (cv, imageData) => {
      const r = globalThis.jsQR(imageData.data, imageData.width, imageData.height, { inversionAttempts: 'dontInvert' });
      return r ? r.data : null;
    }];
  },
};

async function load(spec) {
  const loader = loaders[spec.name];
  if (!loader) {
    throw new Error('unknown decoder ' + spec.name);
  }
  const [engine, fn] = await loader(spec);
  decode = fn;
  return engine;
}

async function decodeURL(url) {
  const blob = await (await fetch(url)).blob();
  const bitmap = await createImageBitmap(blob);
  const t0 = performance.now();
  const imageData = grab(bitmap, canvas);
  const text = await decode(canvas, imageData);
  const ms = performance.now() - t0;
  bitmap.close();
  return { text, ms };
}

window.framesTest = { load, decode: decodeURL };
