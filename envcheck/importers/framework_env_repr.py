"""Reads OpenMMLab's environment as pasted from `print(collect_env())` (mmcv, mmengine, mmdet 3.x, mmpose): the Python
repr of its dict, `OrderedDict([('sys.platform', 'linux'), ('CUDA available', True), ...])` or `{'sys.platform':
'linux', ...}`, often wrapped across lines by the page it was copied from, into the `label: value` lines that
importers/framework_env.py reads, so both spellings give the same facts.

The repr is read by a small tokenizer, never evaluated: quoted strings (with the escapes `repr` writes: `\\n`, `\\\\`,
`\\'`, `\\xNN`, ...), bare words (`True`, `None`, numbers) and punctuation. A line break inside a string is a wrap the
paste added (repr escapes the real ones) and is dropped. It runs once over the text, with no recursion, and stops at
the bracket that closes the dict or after _MAX_PAIRS pairs; a paste cut short gives the pairs it holds.
"""

from __future__ import annotations

import re

# the opening of the repr: `OrderedDict([('sys.platform'`, `{'sys.platform':`, with any wrap between the tokens
_START = re.compile(r"""(?:OrderedDict\s*\(\s*\[\s*\(|\{)\s*(?=['"]sys\.platform['"])""")
_DETECT_CHARS = 20000
_MAX_PAIRS = 500
_PUNCTUATION = "()[]{},:"
_OPENING = "([{"
_CLOSING = ")]}"
# the escapes Python's repr of a str writes; any other backslash is kept as it stands (a hand-typed Windows path)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
# the one value that holds lines of its own (torch.__config__.show()); every other value is one line
_MULTILINE_KEY = "PyTorch compiling details"


def looks_like_env_repr(text: str) -> bool:
    """True for text holding the repr of OpenMMLab's collect_env dict (its `sys.platform` entry opens it)."""
    return _START.search(text[:_DETECT_CHARS]) is not None


def env_repr_as_lines(text: str) -> str:
    """The `label: value` lines OpenMMLab's logger prints for the same dict, one per pair of the repr in `text`;
    "" when `text` holds no such repr."""
    lines = []
    for key, value in _pairs(text):
        label = " ".join(key.split())
        said = value if key == _MULTILINE_KEY else " ".join(value.splitlines())
        lines.append(f"{label}: {said}")
    return "\n".join(lines) + ("\n" if lines else "")


def _pairs(text: str) -> list[tuple[str, str]]:
    """(key, value) of every `('key', value)` or `'key': value` entry of the dict, in order."""
    start = _START.search(text)
    if start is None:
        return []
    tokens = _tokens(text, start.start())
    pairs: list[tuple[str, str]] = []
    for index in range(1, len(tokens) - 2):
        before, key, separator, value = tokens[index - 1 : index + 3]
        if key[0] != "string" or separator[0] != "punct" or value[0] == "punct":
            continue
        is_tuple = separator[1] == "," and before == ("punct", "(")
        is_dict = separator[1] == ":" and before[0] == "punct" and before[1] in "{,"
        if not (is_tuple or is_dict) or (value[0] == "cut" and key[1] != _MULTILINE_KEY):
            continue  # a value the paste cut short is kept only where a part of it still says something
        pairs.append((key[1], value[1]))
        if len(pairs) >= _MAX_PAIRS:
            break
    return pairs


def _tokens(text: str, position: int) -> list[tuple[str, str]]:
    """("string" | "cut" (a string the text ends inside) | "word" | "punct", text) from `position` to the bracket
    that closes the first one opened."""
    tokens: list[tuple[str, str]] = []
    depth = 0
    end = len(text)
    while position < end:
        char = text[position]
        if char.isspace():
            position += 1
        elif char in "'\"":
            kind, value, position = _string(text, position)
            tokens.append((kind, value))
        elif char in _PUNCTUATION:
            tokens.append(("punct", char))
            position += 1
            depth += 1 if char in _OPENING else -1 if char in _CLOSING else 0
            if depth <= 0 and char in _CLOSING:
                break
        else:
            word_end = position
            while word_end < end and not text[word_end].isspace() and text[word_end] not in _PUNCTUATION + "'\"":
                word_end += 1
            tokens.append(("word", text[position:word_end]))
            position = word_end
    return tokens


def _string(text: str, position: int) -> tuple[str, str, int]:
    """The quoted string opening at `position`: its kind ("string", or "cut" when the text ends first), its value
    and the position after it."""
    quote = text[position]
    position += 1
    parts: list[str] = []
    end = len(text)
    while position < end:
        char = text[position]
        if char == quote:
            return "string", "".join(parts), position + 1
        if char in "\r\n":  # a wrap the page added; repr writes a real line break as \n
            position += 1
            continue
        if char != "\\":
            parts.append(char)
            position += 1
            continue
        escape_at = position + 1
        while escape_at < end and text[escape_at] in "\r\n":  # a wrap between the backslash and its letter
            escape_at += 1
        letter = text[escape_at] if escape_at < end else ""
        width = _HEX_ESCAPES.get(letter, 0)
        digits = text[escape_at + 1 : escape_at + 1 + width]
        if letter in _SIMPLE_ESCAPES:
            parts.append(_SIMPLE_ESCAPES[letter])
            position = escape_at + 1
        elif width and _is_hex(digits, width):
            code = int(digits, 16)
            is_character = code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF  # a lone surrogate cannot be printed
            parts.append(chr(code) if is_character else "\ufffd")
            position = escape_at + 1 + len(digits)
        else:
            parts.append("\\")
            position += 1
    return "cut", "".join(parts), position


def _is_hex(digits: str, length: int) -> bool:
    return len(digits) == length and all(char in "0123456789abcdefABCDEF" for char in digits)
