// countdown.js: the preview page's "time left" of the QR code, counted
// down each second by this tablet's clock.
const cell = document.getElementById('time-left');

function tick() {
  const left = Math.round((Date.parse(cell.dataset.expires) - Date.now()) / 1000);
  if (left <= 0) {
    cell.textContent = 'expired: press the button on the monitor again';
    return;
  }
  cell.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
  setTimeout(tick, 1000);
}

if (cell && cell.dataset.expires) {
  tick();
}
