// api.js: the small helpers the pages' modules share.

// postJSON posts body as JSON to path (same origin) and resolves to the
// answer's JSON; a 4xx or 5xx rejects with the server's message.
export async function postJSON(path, body) {
  const resp = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  let answer = {};
  try {
    answer = await resp.json();
  } catch {
    answer = {};
  }
  if (!resp.ok) {
    throw new Error(answer.error || `The Central Station answered ${resp.status}`);
  }
  return answer;
}

// say shows text in the page's status line (read out by screen readers).
export function say(text, kind = '') {
  const status = document.getElementById('status');
  if (status) {
    status.textContent = text;
    status.className = 'status ' + kind;
  }
}

// passkeyProblem turns a WebAuthn error into words for the technician.
export function passkeyProblem(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
      return 'The tablet did not give its passkey (cancelled, timed out, or the PIN or fingerprint was not accepted). Try again.';
    case 'InvalidStateError':
      return 'This tablet already holds a passkey for this technician: sign in with it.';
    case 'NotSupportedError':
      return 'This browser cannot use passkeys.';
    case 'SecurityError':
      return 'The Central Station address is not trusted for passkeys: open it by its name, not its IP address.';
    default:
      return (err && err.message) || 'Something went wrong: try again.';
  }
}
