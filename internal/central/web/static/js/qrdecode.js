// qrdecode.js reads the monitor's pairing QR code from camera frames, in
// the page. It uses the browser's own BarcodeDetector where that reads
// qr_code (ChromeOS, Android, macOS), and otherwise zxing-wasm (vendored;
// docs/web-app.md says why this decoder). The .wasm is served by the
// Central Station next to this file: zxing-wasm would fetch it from a
// public CDN unless told otherwise, which locateFile below does.
import { prepareZXingModule, readBarcodes } from '../vendor/zxing-wasm@3.1.8/es/reader/index.js';

const wasmURL = new URL('../vendor/zxing-wasm@3.1.8/reader/zxing_reader.wasm', import.meta.url).href;

// Reader options: only QR codes, one per frame, dark modules on a light
// screen (no inverted pass), and the slower, more thorough search.
const zxingOptions = {
  formats: ['QRCode'],
  maxNumberOfSymbols: 1,
  tryHarder: true,
  tryInvert: false,
};

let zxingReady;

function loadZXing() {
  zxingReady ??= prepareZXingModule({
    overrides: {
      locateFile: (file, prefix) => (file.endsWith('.wasm') ? wasmURL : prefix + file),
    },
    fireImmediately: true,
  });
  return zxingReady;
}

async function nativeDetector() {
  if (!('BarcodeDetector' in globalThis)) {
    return null;
  }
  try {
    const formats = await globalThis.BarcodeDetector.getSupportedFormats();
    return formats.includes('qr_code') ? new globalThis.BarcodeDetector({ formats: ['qr_code'] }) : null;
  } catch {
    return null;
  }
}

// createDecoder returns {engine, decode}: decode(imageData) resolves to the
// QR code's text, or null when the frame shows none. engine is 'native' or
// 'zxing-wasm'. With {native: false} the wasm decoder is used even where
// the browser has one (tests, the benchmark).
export async function createDecoder({ native = true } = {}) {
  const detector = native ? await nativeDetector() : null;
  if (detector) {
    return {
      engine: 'native',
      decode: async (imageData) => {
        const found = await detector.detect(imageData);
        return found.length > 0 ? found[0].rawValue : null;
      },
    };
  }
  await loadZXing();
  return {
    engine: 'zxing-wasm',
    decode: async (imageData) => {
      const found = await readBarcodes(imageData, zxingOptions);
      const qr = found.find((r) => r.isValid);
      return qr ? qr.text : null;
    },
  };
}

// grab draws source (a playing <video>, an ImageBitmap, a canvas) at its
// own size onto canvas and returns the pixels.
export function grab(source, canvas) {
  const width = source.videoWidth || source.width;
  const height = source.videoHeight || source.height;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height);
}
