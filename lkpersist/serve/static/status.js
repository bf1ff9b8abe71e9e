// What the page tells the person: the connection state (from livekit-client's room events), why a
// connection ended, and plain sentences for the ways connecting can fail.

const STATE_LABELS = {
  starting: 'Starting…',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  signalReconnecting: 'Reconnecting…',
  disconnected: 'Disconnected',
  failed: 'Not connected',
  forgotten: 'Forgotten',
};

// DisconnectReason names (livekit protocol) in words; anything else is shown by its name.
const DISCONNECT_REASONS = {
  CLIENT_INITIATED: 'you left',
  DUPLICATE_IDENTITY: 'you joined from another tab or device',
  SERVER_SHUTDOWN: 'the LiveKit server shut down',
  PARTICIPANT_REMOVED: 'you were removed from the room',
  ROOM_DELETED: 'the room was closed',
  ROOM_CLOSED: 'the room was closed',
  STATE_MISMATCH: 'the connection got out of step',
  JOIN_FAILURE: 'joining the room failed',
  MIGRATION: 'the session moved to another server',
  SIGNAL_CLOSE: 'the connection to LiveKit was lost',
  CONNECTION_TIMEOUT: 'the connection timed out',
  MEDIA_FAILURE: 'audio could not be sent or received',
  AGENT_ERROR: 'the agent failed',
};

export class Status {
  constructor(document) {
    this.state = document.getElementById('state');
    this.agentState = document.getElementById('agent-state');
    this.notice = document.getElementById('notice');
    this.info = document.getElementById('info');
  }

  show(state, detail = '') {
    this.state.dataset.state = state;
    this.state.textContent = detail ? `${STATE_LABELS[state] ?? state}: ${detail}` : (STATE_LABELS[state] ?? state);
  }

  showAgent(agentState) {
    this.agentState.textContent = agentState ? `· agent ${agentState}` : '';
  }

  // A problem the person should know about (empty: none any more).
  tell(message) {
    this.notice.textContent = message;
    this.notice.hidden = !message;
  }

  // Something worth knowing that is not a problem (forgotten, audio waiting for a click).
  inform(message) {
    this.info.textContent = message;
    this.info.hidden = !message;
  }

  // Take ``message`` back if it is still the one shown (another may have replaced it since).
  withdraw(message) {
    if (this.info.textContent === message) this.inform('');
  }
}

export function disconnectReason(LK, reason) {
  const name = reason === undefined ? undefined : LK.DisconnectReason[reason];
  return DISCONNECT_REASONS[name] ?? (name ? name.toLowerCase().replaceAll('_', ' ') : 'no reason given');
}

// A sentence for a failed room.connect(); `url` is the LiveKit URL the token endpoint gave.
export function connectFailure(LK, error, url) {
  if (error instanceof LK.ConnectionError) {
    switch (error.reason) {
      case LK.ConnectionErrorReason.ServerUnreachable:
        return `LiveKit cannot be reached at ${url}. Is the server running, and is the address right?`;
      case LK.ConnectionErrorReason.NotAllowed:
        return `LiveKit refused the connection${error.status ? ` (HTTP ${error.status})` : ''}: `
          + 'check the API key and secret this page\'s server uses.';
      case LK.ConnectionErrorReason.Timeout:
        return `LiveKit at ${url} did not answer in time.`;
      case LK.ConnectionErrorReason.Cancelled:
        return 'Connecting was cancelled.';
      default:
        return `Could not connect to LiveKit at ${url}: ${error.message}`;
    }
  }
  return `Could not connect to LiveKit at ${url}: ${error?.message ?? error}`;
}
