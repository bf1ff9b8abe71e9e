// The conversation on the page: the earlier turns (from /api/history), then the live transcription.
// Every text is set with textContent: whatever anyone said is shown as text, never run as markup.

export const TRANSCRIPTION_TOPIC = 'lk.transcription';
const SEGMENT_ID = 'lk.segment_id';
const FINAL = 'lk.transcription_final'; // the string "true" on the stream's trailer
const LABELS = { user: 'You', assistant: 'Agent' };

export class Transcript {
  constructor(document) {
    this.earlierBlock = document.getElementById('earlier-block');
    this.earlier = document.getElementById('earlier');
    this.live = document.getElementById('live');
    this.empty = document.getElementById('empty');
    this.segments = new Map();
  }

  // Turns as /api/history returns them: [{role, text, timestamp}], oldest first.
  showEarlier(turns) {
    this.earlier.replaceChildren(...turns.map((turn) => turnItem(turn.role, turn.text, turn.timestamp)));
    this.earlierBlock.hidden = turns.length === 0;
    this.updateEmpty();
  }

  // One transcription segment, shown as it grows; a later stream of the same segment replaces its text.
  showSegment(segmentId, role, text, final) {
    let item = this.segments.get(segmentId);
    if (item === undefined) {
      item = turnItem(role, text, Date.now() / 1000);
      this.segments.set(segmentId, item);
      this.live.append(item);
    }
    item.querySelector('.text').textContent = text;
    item.classList.toggle('interim', !final);
    this.updateEmpty();
  }

  // A livekit-client TextStreamReader on the transcription topic; `fromUser` says whose words these are.
  async readStream(reader, fromUser) {
    const segmentId = reader.info.attributes?.[SEGMENT_ID] ?? reader.info.id;
    const role = fromUser ? 'user' : 'assistant';
    let text = '';
    for await (const chunk of reader) {
      text += chunk;
      this.showSegment(segmentId, role, text, false);
    }
    // Trailer attributes are merged into reader.info when the stream closes.
    this.showSegment(segmentId, role, text, reader.info.attributes?.[FINAL] === 'true');
  }

  clear() {
    this.segments.clear();
    this.live.replaceChildren();
    this.showEarlier([]);
  }

  updateEmpty() {
    this.empty.hidden = this.earlier.children.length + this.live.children.length > 0;
  }
}

function turnItem(role, text, timestamp) {
  const item = document.createElement('li');
  item.className = `turn ${role === 'user' ? 'user' : 'assistant'}`;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = LABELS[role] ?? role;
  const when = document.createElement('time');
  const date = new Date(timestamp * 1000);
  when.dateTime = date.toISOString();
  const today = date.toDateString() === new Date().toDateString();
  when.textContent = today
    ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  item.append(who, when, body);
  return item;
}
