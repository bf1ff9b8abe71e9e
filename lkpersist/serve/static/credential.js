// The resume credential, kept in localStorage: the only thing that makes this browser "the same person".
// It is a bearer credential for this participant's identity and conversation; nothing else reads it.

const KEY = 'lkpersist.resume_token';
// The device id: random, kept beside the credential, sent as the `lkpersist.device` participant attribute
// so the agent can tell a switch from laptop to phone (same identity, another device) and list devices.
const DEVICE_KEY = 'lkpersist.device';

export function savedCredential() {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null; // storage disabled (private mode, policy): every visit is a new participant
  }
}

export function saveCredential(credential) {
  try {
    localStorage.setItem(KEY, credential);
  } catch {
    // not kept: the next visit is a new participant, nothing else breaks
  }
}

export function forgetCredential() {
  try {
    localStorage.removeItem(KEY);
    localStorage.removeItem(DEVICE_KEY); // a new person on this browser is not linked to the old one
  } catch {
    // nothing stored
  }
}

// This browser's device id (16 random bytes as hex), created on first use; null when storage is disabled.
export function deviceId() {
  try {
    let id = localStorage.getItem(DEVICE_KEY);
    if (!id) {
      const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
      id = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      localStorage.setItem(DEVICE_KEY, id);
    }
    return id;
  } catch {
    return null;
  }
}

// What `sessions show` calls this device: "Chrome on Android". Coarse on purpose (no version numbers).
export function deviceLabel() {
  const ua = navigator.userAgent;
  const os = navigator.userAgentData?.platform || [
    [/Android/, 'Android'], [/iPhone|iPad/, 'iOS'], [/Mac OS X/, 'macOS'], [/Windows/, 'Windows'], [/Linux/, 'Linux'],
  ].find(([pattern]) => pattern.test(ua))?.[1] || 'unknown OS';
  const browser = [[/Edg\//, 'Edge'], [/Firefox\//, 'Firefox'], [/Chrome\//, 'Chrome'], [/Safari\//, 'Safari']]
    .find(([pattern]) => pattern.test(ua))?.[1] || 'Browser';
  return `${browser} on ${os}`;
}

// A short, recognisable form of an identity for the header: p_AbCdEf…wxyz.
export function shortIdentity(identity) {
  return identity.length > 14 ? `${identity.slice(0, 8)}…${identity.slice(-4)}` : identity;
}
