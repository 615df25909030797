// Test page for the browser kit: registers a passkey and signs in with it,
// as the web app will, and reports the authenticator data's flags.
const UP = 0x01, UV = 0x04;

function flags(authData) {
  return new Uint8Array(authData)[32];
}

function b64(buf) {
  return btoa(String.fromCharCode(...new Uint8Array(buf)));
}

async function register(userName) {
  try {
    const cred = await navigator.credentials.create({
      publicKey: {
        rp: { name: 'Z Monitor test' },
        user: { id: new TextEncoder().encode(userName), name: userName, displayName: userName },
        challenge: crypto.getRandomValues(new Uint8Array(32)),
        pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
        authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      },
    });
    const f = flags(cred.response.getAuthenticatorData());
    return { ok: true, id: cred.id, userPresent: !!(f & UP), userVerified: !!(f & UV) };
  } catch (e) {
    return { ok: false, name: e.name, message: e.message };
  }
}

// signIn asks for any passkey of this site (discoverable credentials).
async function signIn() {
  try {
    const cred = await navigator.credentials.get({
      publicKey: {
        challenge: crypto.getRandomValues(new Uint8Array(32)),
        userVerification: 'required',
      },
    });
    const f = flags(cred.response.authenticatorData);
    return {
      ok: true, id: cred.id,
      user: new TextDecoder().decode(cred.response.userHandle),
      userPresent: !!(f & UP), userVerified: !!(f & UV), signature: b64(cred.response.signature),
    };
  } catch (e) {
    return { ok: false, name: e.name, message: e.message };
  }
}

window.passkeyTest = { register, signIn };
