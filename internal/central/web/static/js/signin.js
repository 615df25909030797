// signin.js: sign in with the tablet's passkey (discoverable credential,
// user verification required: the tablet asks for its PIN or biometrics).
import { postJSON, say, passkeyProblem } from './api.js';

const button = document.getElementById('sign-in');

async function signIn() {
  button.disabled = true;
  say('Waiting for the tablet’s passkey…');
  try {
    const begin = await postJSON('/webauthn/sign-in/begin', {});
    const options = PublicKeyCredential.parseRequestOptionsFromJSON(begin.publicKey);
    const credential = await navigator.credentials.get({ publicKey: options });
    const done = await postJSON('/webauthn/sign-in/finish', {
      ceremony: begin.ceremony,
      next: button.dataset.next || '',
      credential: credential.toJSON(),
    });
    say('Signed in.', 'ok');
    window.location.assign(done.next);
  } catch (err) {
    say(passkeyProblem(err), 'error');
    button.disabled = false;
  }
}

button.addEventListener('click', signIn);
