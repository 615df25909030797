// enroll.js: register a passkey on this tablet with a one-time enrollment
// link (/enroll#e-…). The link's token is in the fragment, which the
// browser never sends in a request line or a Referer.
import { postJSON, say, passkeyProblem } from './api.js';

const form = document.getElementById('enroll-form');
const button = document.getElementById('enroll');
const token = decodeURIComponent(window.location.hash.slice(1));
// The token leaves the address bar (and the tablet's history).
history.replaceState(null, '', window.location.pathname);

if (!token) {
  say('This page needs the enrollment link the operator gave you.', 'error');
  button.disabled = true;
}

async function enroll(event) {
  event.preventDefault();
  button.disabled = true;
  say('Creating the passkey: the tablet asks for its PIN or your fingerprint…');
  try {
    const begin = await postJSON('/webauthn/register/begin', { token });
    document.getElementById('who').textContent = `This registers a passkey on this tablet for ${begin.name}.`;
    const options = PublicKeyCredential.parseCreationOptionsFromJSON(begin.publicKey);
    const credential = await navigator.credentials.create({ publicKey: options });
    const done = await postJSON('/webauthn/register/finish', {
      ceremony: begin.ceremony,
      token,
      name: document.getElementById('tablet-name').value,
      credential: credential.toJSON(),
    });
    say('This tablet is registered. You are signed in.', 'ok');
    window.location.assign(done.next);
  } catch (err) {
    say(passkeyProblem(err), 'error');
    button.disabled = false;
  }
}

form.addEventListener('submit', enroll);
