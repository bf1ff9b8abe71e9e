// The lkpersist page: remember who this browser is, get a token, join the room, show the conversation.
//
// Order of work, so that nothing waits for LiveKit: the page is painted from static HTML; the earlier
// conversation (GET api/history) and the token (POST api/token) are fetched at once; only then does
// livekit-client connect, under a timeout of our own (a server that is not LiveKit can make
// room.connect() hang for a long time).

import {
  deviceId, deviceLabel, forgetCredential, saveCredential, savedCredential, shortIdentity,
} from './credential.js';
import { Status, connectFailure, disconnectReason } from './status.js';
import { TRANSCRIPTION_TOPIC, Transcript } from './transcript.js';

const LK = window.LivekitClient;
const config = JSON.parse(document.querySelector('meta[name="lkpersist-config"]').content);
const status = new Status(document);
const transcript = new Transcript(document);
const mic = document.getElementById('mic');
const reconnectButton = document.getElementById('reconnect');
const identityView = document.getElementById('identity');
const audio = document.getElementById('audio');

// `generation` changes on "Forget me" and "Connect again": late answers of an older attempt are dropped.
const page = { config, transcript, room: null, identity: null, generation: 0 };
window.lkpersist = page; // for devtools, and for the browser tests

class ConnectTimeout extends Error {}

async function start(info = '') {
  const generation = ++page.generation;
  status.show('starting');
  status.tell('');
  status.inform(info);
  reconnectButton.hidden = true;
  loadHistory(generation);
  let answer;
  try {
    answer = await tokenSource().fetch({});
  } catch (error) {
    if (generation === page.generation) failed(`The token endpoint failed: ${error.message}`);
    return;
  }
  if (generation === page.generation) await connect(answer.serverUrl, answer.participantToken, generation);
}

// livekit-client's TokenSource (with its caching and expiry checks) around our own request, because
// the stock endpoint source can neither send resume_token nor keep the extra fields of the answer.
function tokenSource() {
  return LK.TokenSource.custom(async () => {
    const answer = await requestToken();
    saveCredential(answer.resume_token);
    showIdentity(answer.participant_identity);
    return { serverUrl: answer.server_url, participantToken: answer.participant_token };
  });
}

async function requestToken() {
  const attributes = { language: navigator.language };
  const device = deviceId();
  if (device) Object.assign(attributes, { 'lkpersist.device': device, 'lkpersist.device_label': deviceLabel() });
  const body = { participant_attributes: attributes };
  const credential = savedCredential();
  if (credential) body.resume_token = credential;
  const response = await fetch('api/token', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error ?? `HTTP ${response.status}`);
  return answer;
}

async function loadHistory(generation) {
  const credential = savedCredential();
  if (!credential) return; // a first visit: nothing earlier to show
  try {
    const response = await fetch(`api/history?limit=${config.history_turns}`, {
      headers: { Authorization: `Bearer ${credential}` },
    });
    if (!response.ok) return; // 401: not a credential of this server; the token brings a new identity
    const { turns } = await response.json();
    if (generation === page.generation) transcript.showEarlier(turns);
  } catch (error) {
    console.warn('lkpersist: the earlier conversation could not be loaded', error);
  }
}

async function connect(url, token, generation) {
  const room = new LK.Room({ adaptiveStream: true, dynacast: true });
  page.room = room;
  watch(room);
  status.show('connecting');
  const connecting = room.connect(url, token);
  connecting.catch(() => {}); // after our timeout it rejects again, with nobody listening
  try {
    await withTimeout(connecting, config.connect_timeout_ms);
  } catch (error) {
    await room.disconnect();
    if (generation !== page.generation) return;
    const seconds = Math.round(config.connect_timeout_ms / 100) / 10;
    failed(error instanceof ConnectTimeout
      ? `LiveKit at ${url} did not answer within ${seconds} s. Is it running, and is LIVEKIT_URL right?`
      : connectFailure(LK, error, url));
    return;
  }
  await setMicrophone(room, true);
}

const AUDIO_BLOCKED = 'Your browser is holding back the agent\'s voice: click anywhere to hear it.';

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new ConnectTimeout()), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function watch(room) {
  const E = LK.RoomEvent;
  const current = () => page.room === room;
  room.on(E.ConnectionStateChanged, (state) => {
    if (!current() || state === LK.ConnectionState.Disconnected) return; // Disconnected says why
    status.show(state);
    if (state === LK.ConnectionState.Connected) status.tell('');
    updateMic(room);
  });
  room.on(E.Disconnected, (reason) => {
    if (!current()) return;
    status.show('disconnected', disconnectReason(LK, reason));
    status.showAgent('');
    updateMic(room);
    reconnectButton.hidden = false;
  });
  room.on(E.TrackSubscribed, (track) => {
    if (track.kind === LK.Track.Kind.Audio) audio.append(track.attach());
  });
  room.on(E.TrackUnsubscribed, (track) => track.detach().forEach((element) => element.remove()));
  room.on(E.AudioPlaybackStatusChanged, () => {
    // only this room's audio, and only its own sentence: "no longer remembers you" must stay put
    if (!current()) return;
    if (room.state === LK.ConnectionState.Connected && !room.canPlaybackAudio) status.inform(AUDIO_BLOCKED);
    else status.withdraw(AUDIO_BLOCKED);
  });
  for (const event of [E.LocalTrackPublished, E.LocalTrackUnpublished, E.TrackMuted, E.TrackUnmuted]) {
    room.on(event, () => updateMic(room));
  }
  const showAgent = (participant) => {
    if (participant.isAgent) status.showAgent(participant.attributes['lk.agent.state'] ?? 'joined');
  };
  room.on(E.ParticipantConnected, showAgent);
  room.on(E.ParticipantAttributesChanged, (changed, participant) => showAgent(participant));
  room.on(E.ParticipantDisconnected, (participant) => {
    if (participant.isAgent) status.showAgent('left');
  });
  room.registerTextStreamHandler(TRANSCRIPTION_TOPIC, (reader, sender) => {
    transcript.readStream(reader, sender.identity === room.localParticipant.identity)
      .catch((error) => console.warn('lkpersist: a transcription stream broke off', error));
  });
}

async function setMicrophone(room, enabled) {
  try {
    await room.localParticipant.setMicrophoneEnabled(enabled);
  } catch (error) {
    status.tell(`The microphone is not available: ${error.message}`);
  }
  updateMic(room);
}

function updateMic(room) {
  const on = room.localParticipant.isMicrophoneEnabled;
  mic.textContent = on ? 'Microphone on' : 'Microphone off';
  mic.setAttribute('aria-pressed', String(on));
  mic.disabled = room.state !== LK.ConnectionState.Connected;
}

function failed(message) {
  status.show('failed');
  status.tell(message);
  reconnectButton.hidden = false;
}

function showIdentity(identity) {
  page.identity = identity;
  identityView.textContent = identity ? shortIdentity(identity) : 'not known yet';
  identityView.title = identity ?? '';
}

async function forget() {
  forgetCredential();
  const room = page.room;
  page.room = null;
  page.generation += 1;
  showIdentity(null);
  transcript.clear();
  if (room) await room.disconnect();
  start('This browser no longer remembers you: you are starting again as someone new.');
}

async function reconnect() {
  const room = page.room;
  page.room = null;
  if (room) await room.disconnect();
  transcript.clear(); // what was said is in the store by now: it comes back as the earlier conversation
  start();
}

mic.addEventListener('click', async () => {
  const room = page.room;
  if (!room) return;
  mic.disabled = true;
  await room.startAudio().catch(() => {});
  await setMicrophone(room, !room.localParticipant.isMicrophoneEnabled);
});
document.addEventListener('click', () => page.room?.startAudio().catch(() => {}));
reconnectButton.addEventListener('click', reconnect);
document.getElementById('forget').addEventListener('click', forget);

if (LK === undefined) {
  failed('livekit-client did not load (static/vendor/livekit-client.umd.js).');
} else {
  start();
}
