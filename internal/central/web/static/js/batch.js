// batch.js: the batch page. The camera stays on: every QR code read that
// was not read before on this page is posted to /batch/pairings, which
// starts provisioning that device at once, and gets its own row; each row
// follows its own pairing's server-sent events (/pairings/{id}/events)
// and shows its progress live, then its outcome, while the technician
// scans the next device.
import { createDecoder } from './qrdecode.js';
import { openCamera, eachCode } from './camera.js';
import { say, post } from './api.js';

const video = document.getElementById('video');
const canvas = document.getElementById('canvas');
const list = document.getElementById('batch');
const count = document.getElementById('batch-count');
const seen = new Set();
// rescanPause is how long the page waits after reading a QR code it has
// read already before it looks again.
const rescanPause = 500;
const now = () => performance.timeOrigin + performance.now();

// words are the device's states in plain words (the page lists them).
const words = Object.fromEntries([...document.querySelectorAll('#batch-words [data-step]')].map((li) => [li.dataset.step, li.textContent]));

function element(tag, className, text) {
  const e = document.createElement(tag);
  if (className) {
    e.className = className;
  }
  if (text !== undefined) {
    e.textContent = text;
  }
  return e;
}

// addRow adds a row for a scanned device and returns its parts.
function addRow(deviceId) {
  const row = element('li', 'card batch-row');
  const title = element('h3', '', deviceId || 'Unknown device');
  const label = element('p', 'row-label', '');
  const status = element('p', 'row-status', 'Starting…');
  const detail = element('p', 'row-action', '');
  row.append(title, label, status, detail);
  list.prepend(row);
  count.textContent = String(list.children.length);
  return { row, title, label, status, detail };
}

function showView(r, view) {
  r.row.dataset.state = view.state;
  r.row.dataset.deviceState = view.deviceState || '';
  r.title.textContent = view.deviceId;
  r.label.textContent = view.label ? 'Label ' + view.label : 'No label';
  if (view.state === 'succeeded') {
    r.status.textContent = 'PROVISIONED';
    r.row.classList.add('ok');
  } else if (view.final) {
    const res = view.result || { title: 'Not provisioned', action: 'Scan again' };
    r.status.textContent = res.title;
    r.detail.textContent = res.action ? 'What to do: ' + res.action + '.' : '';
    r.row.classList.add('failed');
  } else if (view.state === 'queued') {
    r.status.textContent = 'Waiting for its turn…';
  } else if (words[view.deviceState]) {
    r.status.textContent = words[view.deviceState] + '…';
  } else {
    r.status.textContent = 'Contacting the monitor…';
  }
}

// follow shows pairing id's progress in row r until it is final.
function follow(r, id) {
  r.row.dataset.pairing = id;
  const link = element('a', 'button secondary', 'Details');
  link.href = '/pairings/' + id;
  r.row.append(link);
  const events = new EventSource('/pairings/' + id + '/events');
  events.addEventListener('pairing', (e) => {
    const view = JSON.parse(e.data);
    showView(r, view);
    if (view.final) {
      r.row.dataset.finalAt = String(now());
      events.close();
    }
  });
  events.addEventListener('error', () => {
    if (events.readyState === EventSource.CLOSED && !r.row.dataset.state?.match(/succeeded|failed|refused/)) {
      r.status.textContent = 'Progress lost: open Details to see where it stands.';
    }
  });
}

// start posts a scanned QR code's text and adds its row.
async function start(text, decodedAt) {
  const { resp, answer } = await post('/batch/pairings', new URLSearchParams({ qr: text }));
  if (resp.status === 401 || resp.redirected) {
    say('Signed out: sign in again to go on.', 'error');
    return;
  }
  const r = addRow(answer.deviceId);
  r.row.dataset.decodedAt = String(decodedAt);
  if (!resp.ok || !answer.pairingId) {
    r.row.dataset.state = 'refused';
    r.row.dataset.finalAt = String(now());
    r.row.classList.add('failed');
    r.status.textContent = answer.title || answer.error || 'Refused (' + resp.status + ')';
    r.detail.textContent = answer.action ? 'What to do: ' + answer.action + '.' : '';
    return;
  }
  follow(r, answer.pairingId);
}

async function scan() {
  const stream = await openCamera(video);
  if (!stream) {
    return;
  }
  const decoder = await createDecoder();
  say('Point the camera at each monitor’s QR code in turn.');
  document.body.dataset.scanner = decoder.engine;
  await eachCode(video, canvas, decoder, async (text) => {
    if (seen.has(text)) {
      // Still the monitor just read: look again in a while rather than
      // decode every frame (the tablet's battery; the monitor being
      // provisioned may share the machine in tests).
      await new Promise((resolve) => setTimeout(resolve, rescanPause));
      return true;
    }
    const decodedAt = now();
    seen.add(text);
    say('QR code read: starting that device. Scan the next one.', 'ok');
    try {
      await start(text, decodedAt);
    } catch (err) {
      seen.delete(text);
      say('The Central Station could not be reached: ' + err.message, 'error');
    }
    return true;
  });
}

scan();
