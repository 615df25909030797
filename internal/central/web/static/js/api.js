// api.js: the small helpers the pages' modules share.

// postJSON posts body as JSON to path (same origin) and resolves to the
// answer's JSON; a 4xx or 5xx rejects with the server's message.
export async function postJSON(path, body) {
  const { resp, answer } = await post(path, JSON.stringify(body), 'application/json');
  if (!resp.ok) {
    throw new Error(answer.error || `The Central Station answered ${resp.status}`);
  }
  return answer;
}

// post posts body (same origin; a URLSearchParams is sent as a form) and
// resolves to the response and its JSON ({} if it has none).
export async function post(path, body, contentType) {
  const headers = { Accept: 'application/json' };
  if (contentType) {
    headers['Content-Type'] = contentType;
  }
  const resp = await fetch(path, { method: 'POST', headers, body, credentials: 'same-origin' });
  let answer = {};
  try {
    answer = await resp.json();
  } catch {
    answer = {};
  }
  return { resp, answer };
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
