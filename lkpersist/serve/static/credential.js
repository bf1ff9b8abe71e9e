// The resume credential, kept in localStorage: the only thing that makes this browser "the same person".
// It is a bearer credential for this participant's identity and conversation; nothing else reads it.

const KEY = 'lkpersist.resume_token';

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
  } catch {
    // nothing stored
  }
}

// A short, recognisable form of an identity for the header: p_AbCdEf…wxyz.
export function shortIdentity(identity) {
  return identity.length > 14 ? `${identity.slice(0, 8)}…${identity.slice(-4)}` : identity;
}
