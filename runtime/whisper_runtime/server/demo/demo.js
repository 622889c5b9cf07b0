// The live page: the microphone over OpenAI's Realtime transcription WebSocket, and a file over the
// OpenAI transcription route with stream=true (server-sent events). No build step, no dependencies.
"use strict";

const CAPTURE_RATE = 24000; // OpenAI's realtime audio: PCM16 at 24 kHz
const apiKeyInput = document.getElementById("api-key");
const micButton = document.getElementById("mic");
const micStatus = document.getElementById("mic-status");
const live = document.getElementById("live");
const fileInput = document.getElementById("file");
const drop = document.getElementById("drop");
const fileStatus = document.getElementById("file-status");
const fileText = document.getElementById("file-text");

let microphone = null; // {stream, context, socket} while listening

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

// The key, when the server has one: a Bearer header over HTTP; on the WebSocket, where a browser cannot set headers,
// the subprotocol OpenAI's own browser client uses (the server answers with "realtime", never the key).
function apiKey() {
  return apiKeyInput.value.trim();
}

function realtimeProtocols() {
  return apiKey() ? ["realtime", `openai-insecure-api-key.${apiKey()}`] : [];
}

function authorization() {
  return apiKey() ? { Authorization: `Bearer ${apiKey()}` } : {};
}

function realtimeUrl() {
  const url = new URL("/v1/realtime?intent=transcription", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

// One paragraph per utterance, in the order speech started; data-partial-at / data-final-at record when its
// first partial text and its final text arrived (performance.now(), milliseconds), data-speech-start-ms /
// data-speech-end-ms where the server heard its speech begin and end in the audio the page sent.
function utterance(itemId) {
  let line = live.querySelector(`[data-item="${itemId}"]`);
  if (!line) {
    line = document.createElement("p");
    line.dataset.item = itemId;
    line.className = "partial";
    live.appendChild(line);
  }
  return line;
}

function onRealtimeEvent(event) {
  switch (event.type) {
    case "input_audio_buffer.speech_started":
      utterance(event.item_id).dataset.speechStartMs = event.audio_start_ms;
      break;
    case "input_audio_buffer.speech_stopped":
      utterance(event.item_id).dataset.speechEndMs = event.audio_end_ms;
      break;
    case "conversation.item.input_audio_transcription.delta": {
      const line = utterance(event.item_id);
      if (line.dataset.finalAt) break;
      line.textContent += event.delta;
      line.dataset.partialAt = line.dataset.partialAt || performance.now();
      break;
    }
    case "conversation.item.input_audio_transcription.completed": {
      const line = utterance(event.item_id);
      line.textContent = event.transcript;
      line.className = "final";
      line.dataset.finalAt = performance.now();
      break;
    }
    case "conversation.item.input_audio_transcription.failed":
      utterance(event.item_id).classList.add("error");
      micStatus.textContent = event.error.message;
      break;
    case "error":
      micStatus.textContent = event.error.message;
      break;
  }
}

async function startMicrophone() {
  // The browser's voice-call processing (echo cancellation, noise suppression, gain control) hurts recognition.
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const context = new AudioContext({ sampleRate: CAPTURE_RATE });
  await context.audioWorklet.addModule("pcm-worklet.js");
  const capture = new AudioWorkletNode(context, "pcm16-capture");
  context.createMediaStreamSource(stream).connect(capture);
  capture.connect(context.destination); // silent: keeps the node pulled by the audio graph
  let socket;
  try {
    socket = new WebSocket(realtimeUrl(), realtimeProtocols());
  } catch (error) { // a key with characters a subprotocol cannot carry
    stream.getTracks().forEach((track) => track.stop());
    context.close();
    throw error;
  }
  const waiting = []; // chunks captured while the socket connects: the first words are not lost
  const append = (chunk) => JSON.stringify({ type: "input_audio_buffer.append", audio: base64(chunk) });
  let opened = false;
  socket.onopen = () => {
    opened = true;
    micStatus.textContent = "listening";
    waiting.splice(0).forEach((chunk) => socket.send(append(chunk)));
  };
  socket.onmessage = (message) => onRealtimeEvent(JSON.parse(message.data));
  // A refused handshake (a missing or wrong API key answers 401) closes before it opens: browsers hide the status.
  socket.onclose = () => stopMicrophone(opened ? "disconnected" : "could not connect: is the API key right?");
  capture.port.onmessage = (message) => {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(append(message.data));
    } else if (socket.readyState === WebSocket.CONNECTING) {
      waiting.push(message.data);
    }
  };
  microphone = { stream, context, socket };
  micButton.textContent = "Stop microphone";
  micStatus.textContent = "connecting";
}

function stopMicrophone(status) {
  if (!microphone) return;
  microphone.stream.getTracks().forEach((track) => track.stop());
  microphone.context.close();
  microphone.socket.onclose = null;
  microphone.socket.close();
  microphone = null;
  micButton.textContent = "Start microphone";
  micStatus.textContent = status;
}

micButton.addEventListener("click", () => {
  if (microphone) {
    stopMicrophone("stopped");
  } else {
    startMicrophone().catch((error) => { micStatus.textContent = `microphone: ${error.message}`; });
  }
});

// Server-sent events: "data: {json}" lines, events separated by a blank line.
async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = pending.indexOf("\n\n")) >= 0) {
      const data = pending.slice(0, end).split("\n")
        .filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trim()).join("\n");
      pending = pending.slice(end + 2);
      if (data && data !== "[DONE]") yield JSON.parse(data);
    }
  }
}

async function transcribeFile(file) {
  fileText.textContent = "";
  fileText.className = "partial";
  delete fileText.dataset.deltas;
  delete fileText.dataset.done;
  fileStatus.textContent = `transcribing ${file.name}`;
  fileStatus.className = "";
  const form = new FormData();
  form.append("file", file);
  form.append("model", "whisper-1");
  form.append("stream", "true");
  const response = await fetch("/v1/audio/transcriptions", { method: "POST", body: form, headers: authorization() });
  if (!response.ok) {
    const body = await response.json().catch(() => ({ error: { message: response.statusText } }));
    throw new Error(body.error.message);
  }
  let deltas = 0;
  for await (const event of serverSentEvents(response)) {
    if (event.type === "transcript.text.delta") {
      fileText.textContent += event.delta;
      fileText.dataset.deltas = ++deltas;
    } else if (event.type === "transcript.text.done") {
      fileText.textContent = event.text;
      fileText.className = "final";
      fileText.dataset.done = "true";
    }
  }
  fileStatus.textContent = `${file.name}: done`;
}

function onFile(file) {
  if (file) {
    transcribeFile(file).catch((error) => {
      fileStatus.textContent = error.message;
      fileStatus.className = "error";
    });
  }
}

fileInput.addEventListener("change", () => onFile(fileInput.files[0]));
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  onFile(event.dataTransfer.files[0]);
});
