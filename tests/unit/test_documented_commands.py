"""Every `bot-operator`, `bot-runtime` and `make` command the README and docs/ show exists, with its flags.

A command is read from the shell blocks of the Markdown files: its subcommands are walked through the real
argument parsers, each `--flag` on the line must be one that (sub)command takes, and a `make` target must be
in the Makefile. A renamed flag or a removed command fails here instead of in a newcomer's terminal.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from bot_operator.cli import build_parser as operator_parser
from bot_runtime.cli import build_parser as runtime_parser

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PARSERS = {"bot-operator": operator_parser, "bot-runtime": runtime_parser}
INLINE = re.compile(r"`((?:bot-operator|bot-runtime|make) [^`]+)`")
FENCE = re.compile(r"^```(?:sh|bash|shell|console)?\s*$")


def shell_commands() -> list[tuple[str, str]]:
    """(where, command line) of each command in a shell block; an indented line right below one continues it."""
    found: list[tuple[str, str]] = []
    continues = ""  # "<file>:<line>" a continuation of the last command would be at
    for path in DOCUMENTS:
        block, shell, lines = False, False, path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            if line.startswith("```"):
                block, shell = not block, not block and bool(FENCE.match(line))
                continue
            if not shell:
                continue
            text = line.split(" #", 1)[0].rstrip().removeprefix("$ ")
            where = f"{path.relative_to(ROOT)}:{number}"
            if text.startswith((" ", "\t")) and where == continues:
                found[-1] = (found[-1][0], f"{found[-1][1]} {text.strip()}")
            elif text.split(" ", 1)[0] in (*PARSERS, "make") or text.startswith(".venv/bin/bot-"):
                found.append((where, text.removeprefix(".venv/bin/")))
            else:
                continue
            continues = f"{path.relative_to(ROOT)}:{number + 1}"
        for number, line in enumerate(lines, 1):  # and the commands prose names in `code`
            for named in INLINE.findall(line):
                found.append((f"{path.relative_to(ROOT)}:{number}", named))
    return found


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


COMMANDS = shell_commands()


def test_the_documents_show_commands_at_all() -> None:
    assert len([c for _, c in COMMANDS if c.startswith("bot-operator")]) >= 10
    assert any(c.startswith("bot-runtime backtest") for _, c in COMMANDS)


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_documented_command_exists_with_its_flags(where: str, command: str) -> None:
    words = command.replace("[", " ").replace("]", " ").replace("(", " ").replace(")", " ").replace("|", " ").split()
    if words[0] == "make":
        targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
        for target in [w for w in words[1:] if "=" not in w and not w.startswith("-")][:1]:
            assert target in targets, f"{where}: make {target}: no such target"
        return
    parser, path = PARSERS[words[0]](), [words[0]]
    flags = _flags(parser)
    for word in words[1:]:
        sub = _subcommands(parser)
        if word.startswith("-"):
            break
        if sub:
            assert word in sub, f"{where}: {' '.join(path)} has no command {word!r} (it has {', '.join(sub)})"
            parser, path = sub[word], [*path, word]
            flags |= _flags(parser)
    for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", command):
        assert flag in flags, f"{where}: {' '.join(path)} takes no {flag}"
