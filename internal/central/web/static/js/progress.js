// progress.js: the pairing page follows its pairing's server-sent events
// and marks each step as the device reports it; at the end the page is
// loaded again, and the Central Station shows the outcome.
const root = document.getElementById('pairing');
const steps = [...document.querySelectorAll('.steps [data-step]')];
const status = document.getElementById('status');
const order = steps.map((li) => li.dataset.step);
const words = Object.fromEntries(steps.map((li) => [li.dataset.step, li.textContent]));

function show(view) {
  let current = order.indexOf(view.deviceState);
  if (view.state === 'succeeded') {
    current = order.length - 1;
  }
  steps.forEach((li, i) => {
    li.className = 'step ' + (i < current || (i === current && view.final) ? 'done' : i === current ? 'current' : 'todo');
  });
  if (view.state === 'queued') {
    status.textContent = 'Waiting for its turn…';
  } else if (current >= 0) {
    status.textContent = view.final ? words[order[current]] : words[order[current]] + '…';
  } else {
    status.textContent = 'Contacting the monitor…';
  }
  root.dataset.deviceState = view.deviceState || '';
  root.dataset.state = view.state;
}

if (root.dataset.final !== 'true') {
  const events = new EventSource(root.dataset.events);
  events.addEventListener('pairing', (e) => {
    const view = JSON.parse(e.data);
    show(view);
    if (view.final) {
      events.close();
      window.location.replace(window.location.pathname);
    }
  });
  events.addEventListener('error', () => {
    // The stream ended without the outcome (signed out, Central Station
    // restarted): loading the page again shows where things stand.
    if (events.readyState === EventSource.CLOSED) {
      window.location.replace(window.location.pathname);
    }
  });
}
