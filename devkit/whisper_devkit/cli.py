"""``whisper-devkit``: developer tooling, one subcommand per job.

Each subcommand is a ``Command``: its name, help, a function that adds its arguments and one that runs it.
Add a command by appending to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Callable, Sequence

from whisper_devkit import models, speech

ENGLISH_ONLY_CORPORA = {"pocketsphinx": speech.pocketsphinx_corpus, "jfk": lambda: [speech.jfk()]}


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _configure_models(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"models to fetch and convert: {', '.join(models.MODELS)} (default: all)")


def _run_models(args: argparse.Namespace) -> int:
    for name in args.names or models.MODELS:
        print(f"{name}: {models.ensure_model(name)} (CTranslate2 original: {models.ensure_ct2_model(name)})")
    return 0


def _corpus_builders() -> dict[str, Callable[[], list[speech.Utterance]]]:
    builders: dict[str, Callable[[], list[speech.Utterance]]] = dict(ENGLISH_ONLY_CORPORA)
    for language in speech.ESPEAK_VOICES:
        builders[f"espeak-{language}"] = lambda language=language: speech.espeak_corpus(language)
    for language in speech.ASTERISK_VOICES:
        builders[f"asterisk-{language}"] = lambda language=language: speech.asterisk_corpus(language)
    builders["long-en"] = lambda: [speech.long_form(20.0, "en")]
    return builders


def _configure_speech(parser: argparse.ArgumentParser) -> None:
    corpora = ", ".join(_corpus_builders())
    parser.add_argument("corpora", nargs="*", metavar="CORPUS", help=f"corpora to build: {corpora} (default: all)")


def _run_speech(args: argparse.Namespace) -> int:
    builders = _corpus_builders()
    unknown = set(args.corpora) - set(builders)
    if unknown:
        raise speech.CorpusBuildError(f"unknown corpora {sorted(unknown)}; known: {', '.join(builders)}")
    for name in args.corpora or builders:
        utterances = builders[name]()
        minutes = sum(item.duration for item in utterances) / 60
        print(f"{name}: {len(utterances)} recordings, {minutes:.1f} min, {utterances[0].path.parent}")
    return 0


def _configure_accuracy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="models to score (default: all)")
    parser.add_argument("--clips", type=int, default=32, help="clips sampled from each corpus (default 32)")


def _accuracy_corpora(multilingual: bool, clips: int) -> dict[str, list[speech.Utterance]]:
    """What the models are scored on: an even sample of ``clips`` from each corpus (half as many per other language)."""
    from whisper_devkit.accuracy import every_nth, single_window

    corpora = {
        "espeak-en": every_nth(speech.espeak_corpus("en"), clips),
        "pocketsphinx+jfk": every_nth(speech.pocketsphinx_corpus() + [speech.jfk()], clips),
        "asterisk-en": every_nth(single_window(speech.asterisk_corpus("en")), clips),
    }
    for language in ("es", "fr", "it", "ru") if multilingual else ():
        corpora[f"asterisk-{language}"] = every_nth(single_window(speech.asterisk_corpus(language)), clips // 2)
    return corpora


def _run_accuracy(args: argparse.Namespace) -> int:
    from whisper_devkit.accuracy import MARKDOWN_HEADER, FasterWhisperTranscriber, TransformersTranscriber, compare

    print(MARKDOWN_HEADER, flush=True)
    for name in args.names or models.MODELS:
        hf = TransformersTranscriber(models.ensure_model(name))
        fw = FasterWhisperTranscriber(models.ensure_ct2_model(name))
        for corpus, utterances in _accuracy_corpora(hf.multilingual, args.clips).items():
            print(compare(name, hf, fw, corpus, utterances).markdown_row(), flush=True)
    return 0


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    """No options: the demo always runs the example endpoint with the small model."""


def _run_demo(args: argparse.Namespace) -> int:
    from whisper_devkit import demo  # loads the runtime's client stack only for this command

    return demo.main()


COMMANDS: list[Command] = [
    Command("models", "download Whisper weights and convert them to Hugging Face format", _configure_models, _run_models),
    Command("speech", "build the speech corpora with reference text", _configure_speech, _run_speech),
    Command("accuracy", "score the converted models against the originals on CPU", _configure_accuracy, _run_accuracy),
    Command("demo", "local control plane + Helm chart + example endpoint + tiny.en on CPU, transcribing via KServe v2",
            _configure_demo, _run_demo),
]


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="whisper-devkit", description="Developer tooling for whisper-kserve.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in commands:
        subparser = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.configure(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (speech.CorpusBuildError, models.UnknownModelError) as error:
        print(f"whisper-devkit {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
