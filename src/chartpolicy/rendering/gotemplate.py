"""What a piece of Helm template code can reach: a small static reader of Go templates.

Targeted comparison renders (:mod:`chartpolicy.rendering.closure`) keep only
the template files a comparison reads and what they need.  This module reads
template text the way Go's ``text/template`` lexer does (actions, comments,
string, raw-string and character literals, trim markers) and says, for each
*region* of code that runs as one unit (a file's top level, one ``define``
body, a string handed to ``tpl``):

* which templates it names: literal ``include``/``template``/``block`` names,
  and template files included by path (``include (print $.Template.BasePath
  "/x.yaml") .``); a name built at run time makes the region *uncertain*;
* whether it calls ``fail``/``required`` (validation), ``tpl``, a
  nondeterministic function, or ``.Files`` (and which files);
* whether it reads ``.Capabilities``, ``.Release.IsInstall``/``IsUpgrade`` or
  ``.Release.Revision`` by name, or a whole ``.Release``;
* where the root context (``.`` at the top of a file, ``$``, and anything
  that may hold them: variables, dict keys, a define's argument) flows: a
  root that is printed or serialised (``toYaml $``) could expose every field
  of it, so such a *dump* counts as reading everything;
* whether it mutates a map it did not create (``set .Values ...``): such a
  template changes what other templates render.

Everything here errs on one side: when in doubt a region is uncertain,
dumps, mutates or fails, so a reduced chart keeps more, or is not used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator

#: Nondeterministic template functions (those the perturbation module
#: neutralises, and those it cannot): a render that reaches one is not shared.
NONDETERMINISTIC = frozenset({
    "randAlphaNum", "randAlpha", "randNumeric", "randAscii", "randBytes", "randInt", "shuffle", "uuidv4",
    "genPrivateKey", "bcrypt", "htpasswd", "encryptAES", "now", "genCA", "genCAWithKey", "genSelfSignedCert",
    "genSelfSignedCertWithKey", "genSignedCert", "genSignedCertWithKey", "ago", "getHostByName",
})
_FAILING = frozenset({"fail", "required"})
_KEYWORDS = frozenset({"if", "else", "end", "range", "with", "define", "block", "template", "break", "continue"})
#: Root fields that hold no Kubernetes version, mode or revision.
_SAFE_ROOT_FIELDS = frozenset({"Values", "Chart", "Files", "Template", "Subcharts"})
#: Functions whose result holds their arguments (a dict, a list, one of the arguments).
_CARRIERS = frozenset({"dict", "list", "tuple", "append", "prepend", "concat", "mustAppend", "mustPrepend",
                       "merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite", "set", "default", "coalesce",
                       "ternary", "and", "or", "deepCopy", "mustDeepCopy", "index", "get", "dig", "pluck", "first",
                       "last", "mustFirst", "mustLast", "rest", "initial", "reverse", "uniq", "compact", "values",
                       "pick", "omit", "without"})
#: Functions that look at a root without exposing a field of it.
_INSPECTORS = frozenset({"not", "empty", "hasKey", "kindIs", "kindOf", "typeOf", "typeIs", "len", "keys", "unset"})
#: Functions that return a map or list nobody else holds.
_FRESH = frozenset({"dict", "list", "tuple", "deepCopy", "mustDeepCopy", "fromYaml", "fromJson", "fromYamlArray",
                    "fromJsonArray", "mustFromJson", "pick", "omit", "splitList", "regexSplit", "append", "prepend",
                    "concat", "mustAppend", "mustPrepend", "without", "uniq", "compact", "reverse", "rest",
                    "initial", "keys", "values", "sortAlpha", "split"})
_MUTATORS = frozenset({"set", "unset", "merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite"})
#: Functions whose result shares no map with anything.
_DEEP_COPIES = frozenset({"deepCopy", "mustDeepCopy", "fromYaml", "fromJson", "fromYamlArray", "fromJsonArray",
                          "mustFromJson"})
#: Functions whose result holds only what their arguments hold (or new lists of it).
_SUBTREE_UNIONS = frozenset({"default", "concat", "append", "mustAppend", "prepend", "mustPrepend", "list", "tuple", "dict",
                             "compact", "uniq"})


class TemplateSyntaxError(ValueError):
    """Text this reader cannot follow (an unterminated action or literal)."""


# --------------------------------------------------------------------------- lexing

@dataclass(frozen=True)
class Token:
    kind: str  # str num ident dot field var lp rp pipe comma decl assign
    text: str
    #: For ``field`` and ``var``: the field names after the base (``$.a.b`` -> ("a", "b")).
    fields: tuple[str, ...] = ()


_SPACE = " \t\r\n"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(?:0[xXoObB])?[0-9][0-9a-fA-F_.eEpPxi+-]*")
_FIELDS = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def actions(text: str) -> Iterator[str]:
    """The inside of every action of ``text`` (comments left out), trim markers removed."""
    for _, body in actions_at(text):
        yield body


def actions_at(text: str) -> Iterator[tuple[int, str]]:
    """``(offset of the action's "{{", its inside)`` for every action of ``text``."""
    i, n = 0, len(text)
    while True:
        start = text.find("{{", i)
        if start < 0:
            return
        j = start + 2
        if text.startswith("- ", j) or text.startswith("-\t", j) or text.startswith("-\n", j) \
                or text.startswith("-\r", j):
            j += 2
        k = j
        while k < n and text[k] in _SPACE:
            k += 1
        if text.startswith("/*", k):
            end = text.find("*/", k + 2)
            if end < 0:
                raise TemplateSyntaxError("unclosed comment")
            close = text.find("}}", end + 2)
            if close < 0:
                raise TemplateSyntaxError("unclosed comment action")
            i = close + 2
            continue
        k, body_start = j, j
        while True:
            if k >= n:
                raise TemplateSyntaxError("unclosed action")
            c = text[k]
            if c == '"':
                k = _skip_quoted(text, k, '"')
            elif c == "`":
                end = text.find("`", k + 1)
                if end < 0:
                    raise TemplateSyntaxError("unterminated raw string")
                k = end + 1
            elif c == "'":
                k = _skip_quoted(text, k, "'")
            elif text.startswith("}}", k):
                body = text[body_start:k]
                if body.endswith("-") and len(body) >= 2 and body[-2] in _SPACE:
                    body = body[:-1]  # the right trim marker, " -}}"
                yield start, body
                i = k + 2
                break
            else:
                k += 1


def _skip_quoted(text: str, k: int, quote: str) -> int:
    k += 1
    while k < len(text):
        c = text[k]
        if c == "\\":
            k += 2
            continue
        if c == quote:
            return k + 1
        if c == "\n":
            break
        k += 1
    raise TemplateSyntaxError("unterminated string literal")


def tokens(action: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(action)
    while i < n:
        c = action[i]
        if c in _SPACE:
            i += 1
        elif c == '"':
            end = _skip_quoted(action, i, '"')
            out.append(Token("str", _unquote(action[i + 1:end - 1])))
            i = end
        elif c == "`":
            end = action.find("`", i + 1)
            if end < 0:
                raise TemplateSyntaxError("unterminated raw string")
            out.append(Token("str", action[i + 1:end]))
            i = end + 1
        elif c == "'":
            end = _skip_quoted(action, i, "'")
            out.append(Token("num", action[i:end]))
            i = end
        elif c == "(":
            out.append(Token("lp", c))
            i += 1
        elif c == ")":
            i += 1
            match = _FIELDS.match(action, i)
            if match:  # (pipeline).field
                out.append(Token("rp", c, tuple(match.group(0)[1:].split("."))))
                i = match.end()
            else:
                out.append(Token("rp", c))
        elif c == "|":
            out.append(Token("pipe", c))
            i += 1
        elif c == ",":
            out.append(Token("comma", c))
            i += 1
        elif action.startswith(":=", i):
            out.append(Token("decl", ":="))
            i += 2
        elif c == "=":
            out.append(Token("assign", "="))
            i += 1
        elif c == "$":
            match = _IDENT.match(action, i + 1)
            name = "$" + (match.group(0) if match else "")
            i = match.end() if match else i + 1
            chain = _FIELDS.match(action, i)
            fields = tuple(chain.group(0)[1:].split(".")) if chain else ()
            i = chain.end() if chain else i
            out.append(Token("var", name, fields))
        elif c == ".":
            chain = _FIELDS.match(action, i)
            if chain:
                out.append(Token("field", chain.group(0), tuple(chain.group(0)[1:].split("."))))
                i = chain.end()
            elif i + 1 < n and action[i + 1].isdigit():
                match = _NUMBER.match(action, i)
                end = match.end() if match else i + 1
                out.append(Token("num", action[i:end]))
                i = end
            else:
                out.append(Token("dot", "."))
                i += 1
        elif c.isdigit() or (c in "+-" and i + 1 < n and action[i + 1].isdigit()):
            match = _NUMBER.match(action, i)
            end = match.end() if match else i + 1
            out.append(Token("num", action[i:end]))
            i = end
        else:
            match = _IDENT.match(action, i)
            if not match:
                raise TemplateSyntaxError(f"unexpected {c!r} in an action")
            i = match.end()
            chain = _FIELDS.match(action, i)  # a method or field of a function result: `template.x` is rare
            fields = tuple(chain.group(0)[1:].split(".")) if chain else ()
            i = chain.end() if chain else i
            out.append(Token("ident", match.group(0), fields))
    return out


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'"}


def _unquote(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


# --------------------------------------------------------------------------- parsing

@dataclass
class Operand:
    kind: str  # str lit fn dot var field group
    text: str = ""
    fields: tuple[str, ...] = ()
    group: "Pipeline | None" = None


@dataclass
class Command:
    operands: list[Operand]


@dataclass
class Pipeline:
    decl: tuple[str, ...] = ()
    commands: list[Command] = field(default_factory=list)


def _parse_pipeline(toks: list[Token], i: int, closing: bool) -> tuple[Pipeline, int]:
    pipeline = Pipeline()
    # Declarations: $x := ..., $k, $v := ..., $x = ...
    j = i
    names = []
    while j < len(toks) and toks[j].kind == "var" and not toks[j].fields:
        names.append(toks[j].text)
        if j + 1 < len(toks) and toks[j + 1].kind == "comma":
            j += 2
            continue
        break
    if names and j + 1 < len(toks) and toks[j + 1].kind in ("decl", "assign"):
        pipeline.decl = tuple(names)
        i = j + 2
    command: list[Operand] = []
    while i < len(toks):
        tok = toks[i]
        if tok.kind == "rp":
            if not closing:
                raise TemplateSyntaxError("unbalanced )")
            break
        if tok.kind == "pipe":
            if not command:
                raise TemplateSyntaxError("empty command in a pipeline")
            pipeline.commands.append(Command(command))
            command = []
            i += 1
            continue
        if tok.kind == "lp":
            inner, i = _parse_pipeline(toks, i + 1, True)
            if i >= len(toks) or toks[i].kind != "rp":
                raise TemplateSyntaxError("unbalanced (")
            command.append(Operand("group", fields=toks[i].fields, group=inner))
            i += 1
            continue
        if tok.kind == "str":
            command.append(Operand("str", tok.text))
        elif tok.kind == "num":
            command.append(Operand("lit", tok.text))
        elif tok.kind == "ident":
            if tok.text in ("true", "false", "nil"):
                command.append(Operand("lit", tok.text))
            else:
                command.append(Operand("fn", tok.text, tok.fields))
        elif tok.kind == "dot":
            command.append(Operand("dot"))
        elif tok.kind == "var":
            command.append(Operand("var", tok.text, tok.fields))
        elif tok.kind == "field":
            command.append(Operand("field", tok.text, tok.fields))
        else:
            raise TemplateSyntaxError(f"unexpected {tok.text!r}")
        i += 1
    if command:
        pipeline.commands.append(Command(command))
    return pipeline, i


def parse_pipeline(toks: list[Token]) -> Pipeline:
    pipeline, i = _parse_pipeline(toks, 0, False)
    if i != len(toks):
        raise TemplateSyntaxError("trailing tokens")
    return pipeline


# --------------------------------------------------------------------------- regions

@dataclass
class Statement:
    """One action, parsed: a keyword (or "" for a plain pipeline) and its pipeline."""

    keyword: str
    pipeline: Pipeline | None = None
    name: str | None = None  # template/block/define name
    offset: int = -1  # where the action starts in the file


@dataclass
class Region:
    """Code that runs as one unit: a file's top level, a define body, or a string given to ``tpl``."""

    statements: list[Statement] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    #: Template files included by path, relative to a chart's templates/ (``/secrets/x.yaml``),
    #: or full template names (``chart/templates/x.yaml``) under ``"="`` + name.
    paths: set[str] = field(default_factory=set)
    #: Files read through ``.Files``: literal paths, glob patterns (``glob:``), or ``*`` for any.
    files: set[str] = field(default_factory=set)
    uncertain: list[str] = field(default_factory=list)
    #: A string literal that could build template text for ``tpl`` (``"{{"``).
    builds_template_text: bool = False
    fails: bool = False
    tpl: bool = False
    random: bool = False
    reads: set[str] = field(default_factory=set)  # capabilities, mode, revision
    #: An if/with/range whose decision may change with the release name or namespace.
    release_decides: bool = False


@dataclass
class FileCode:
    """A template file: its top level and its define bodies (name -> regions, in order)."""

    top: Region
    defines: dict[str, list[Region]]


_WORDS = re.compile(r"\b(Capabilities|IsInstall|IsUpgrade|Revision)\b")
_WORD_READS = {"Capabilities": {"capabilities"}, "IsInstall": {"mode"}, "IsUpgrade": {"mode"},
               "Revision": {"revision"}}


@lru_cache(maxsize=8192)
def read_file(text: str) -> FileCode:
    """A template file, read (cached by its text: perturbed copies share every other file)."""
    top = Region()
    defines: dict[str, list[Region]] = {}
    # A stack of (keyword, region): a define's end closes its region.
    stack: list[tuple[str, Region]] = []
    current = top
    try:
        for offset, action in actions_at(text):
            count = len(current.statements)
            _read_action(action, current, top, defines, stack)
            for statement in current.statements[count:]:
                statement.offset = offset
            current = stack[-1][1] if stack else top
            # define opens a region: the statements that follow belong to it
            for keyword, region in reversed(stack):
                if keyword in ("define", "block"):
                    current = region
                    break
            else:
                current = top
    except TemplateSyntaxError as error:
        top.uncertain.append(f"cannot read the template: {error}")
    return FileCode(top, defines)


@lru_cache(maxsize=4096)
def read_string(text: str) -> Region:
    """A string that ``tpl`` may execute (a values string, a file's text)."""
    code = read_file(text)
    region = Region(statements=list(code.top.statements), names=set(code.top.names), paths=set(code.top.paths),
                    files=set(code.top.files), uncertain=list(code.top.uncertain),
                    builds_template_text=code.top.builds_template_text, fails=code.top.fails, tpl=code.top.tpl,
                    random=code.top.random, reads=set(code.top.reads), release_decides=code.top.release_decides)
    # A define inside a tpl string defines a name for that execution only; its body runs when named there.
    for bodies in code.defines.values():
        for body in bodies:
            _merge_into(region, body)
    return region


def _merge_into(target: Region, other: Region) -> None:
    target.statements.extend(other.statements)
    target.names |= other.names
    target.paths |= other.paths
    target.files |= other.files
    target.uncertain.extend(other.uncertain)
    target.builds_template_text |= other.builds_template_text
    target.fails |= other.fails
    target.tpl |= other.tpl
    target.random |= other.random
    target.reads |= other.reads
    target.release_decides |= other.release_decides


def _read_action(action: str, current: Region, top: Region, defines: dict[str, list[Region]],
                 stack: list[tuple[str, Region]]) -> None:
    for word in _WORDS.findall(action):
        current.reads |= _WORD_READS[word]
    toks = tokens(action)
    if not toks:
        return
    first = toks[0]
    keyword = first.text if first.kind == "ident" and first.text in _KEYWORDS and not first.fields else ""
    if keyword == "end":
        if not stack:
            raise TemplateSyntaxError("unexpected end")
        opened, region = stack.pop()
        if opened in ("if", "with", "range"):
            region.statements.append(Statement("end"))
        return
    if keyword in ("break", "continue"):
        return
    if keyword == "else":
        rest = toks[1:]
        if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with", "range"):
            _scan_static(rest[1:], current)
            _scan_condition(rest[1:], current)
            current.statements.append(Statement("else " + rest[0].text, parse_pipeline(rest[1:])))
        else:
            current.statements.append(Statement("else"))
        return
    if keyword in ("define", "block", "template"):
        if len(toks) < 2 or toks[1].kind != "str":
            raise TemplateSyntaxError(f"{keyword} without a literal name")
        name = toks[1].text
        rest = toks[2:]
        _scan_static(rest, current)
        pipeline = parse_pipeline(rest) if rest else None
        if keyword == "define":
            region = Region()
            defines.setdefault(name, []).append(region)
            stack.append(("define", region))
            return
        current.names.add(name)
        current.statements.append(Statement(keyword, pipeline, name))
        if keyword == "block":
            region = Region()
            defines.setdefault(name, []).append(region)
            stack.append(("block", region))
        return
    if keyword in ("if", "with", "range"):
        rest = toks[1:]
        _scan_static(rest, current)
        _scan_condition(rest, current)
        current.statements.append(Statement(keyword, parse_pipeline(rest)))
        stack.append((keyword, current))
        return
    _scan_static(toks, current)
    current.statements.append(Statement("", parse_pipeline(toks)))


def _scan_condition(toks: list[Token], region: Region) -> None:
    """Whether an if/with/range may decide differently with another release name or namespace.

    Conservative: a condition that reads ``.Release``, a variable (it may hold
    anything), or the output of another template may.
    """
    for tok in toks:
        if tok.kind in ("field", "var") and "Release" in tok.fields \
                or tok.kind == "var" and tok.text != "$" \
                or tok.kind == "ident" and tok.text in ("include", "template", "tpl", "lookup"):
            region.release_decides = True
            return


#: Functions that only look at a string: a ``"{{"`` given to them builds no template text.
_STRING_PREDICATES = frozenset({"contains", "hasPrefix", "hasSuffix", "eq", "ne", "regexMatch", "mustRegexMatch",
                                "regexFind", "regexFindAll", "trimPrefix", "trimSuffix", "trimAll", "trim", "indexOf"})


def _heads(toks: list[Token]) -> list[str | None]:
    """For each token, the function its command calls (None when the command starts with a value)."""
    heads: list[str | None] = []
    stack: list[str | None] = [None]
    expect_head = True
    for tok in toks:
        if tok.kind == "lp":
            heads.append(stack[-1])
            stack.append(None)
            expect_head = True
            continue
        if tok.kind == "rp":
            if len(stack) > 1:
                stack.pop()
            heads.append(stack[-1])
            expect_head = False
            continue
        if tok.kind in ("pipe", "decl", "assign"):
            heads.append(stack[-1])
            stack[-1] = None
            expect_head = True
            continue
        if expect_head:
            stack[-1] = tok.text if tok.kind == "ident" else None
            expect_head = False
        heads.append(stack[-1])
    return heads


def _template_text_literal(text: str, region: Region) -> None:
    """A string literal holding template actions: what ``tpl`` would run if given it."""
    try:
        for action in actions(text):
            for word in _WORDS.findall(action):
                region.reads |= _WORD_READS[word]
            toks = tokens(action)
            if toks and toks[0].kind == "ident" and toks[0].text in ("template", "block", "define"):
                if len(toks) > 1 and toks[1].kind == "str":
                    if toks[0].text != "define":
                        region.names.add(toks[1].text)
                    toks = toks[2:]
                else:
                    region.uncertain.append("a template name built at render time (in a string literal)")
            _scan_static(toks, region)
    except TemplateSyntaxError:
        # A piece of an action ("{{", "{{ include \""): whatever completes it is built at render time.
        region.builds_template_text = True


def _scan_static(toks: list[Token], region: Region) -> None:
    """What a token list shows without following values: names, paths, files, functions, literals."""
    heads: list[str | None] | None = None
    for index, tok in enumerate(toks):
        if tok.kind == "str":
            if "{{" in tok.text or tok.text.endswith("{"):
                heads = heads or _heads(toks)
                if heads[index] not in _STRING_PREDICATES:
                    if "{{" not in tok.text:
                        region.builds_template_text = True  # "{" + "{" makes an action
                    else:
                        _template_text_literal(tok.text, region)
            if tok.text == "Release":
                region.reads |= {"mode", "revision"}
        elif tok.kind == "ident":
            name = tok.text
            if name in _FAILING:
                region.fails = True
            elif name == "tpl":
                region.tpl = True
            elif name in NONDETERMINISTIC:
                region.random = True
            if name == "include":
                _template_reference(toks, index, region)
        if tok.kind in ("field", "var", "ident", "rp") and tok.fields:
            if tok.fields[-1] == "Release":
                region.reads |= {"mode", "revision"}  # a whole .Release (IsInstall, Revision...) goes somewhere
            if "Files" in tok.fields:
                _files_reference(toks, index, tok, region)


def _template_reference(toks: list[Token], index: int, region: Region) -> None:
    if index + 1 >= len(toks):
        region.uncertain.append("include without a template name")
        return
    nxt = toks[index + 1]
    if nxt.kind == "str":
        region.names.add(nxt.text)
        return
    if nxt.kind == "lp":
        # include (print $.Template.BasePath "/x.yaml") . / (printf "%s/x.yaml" $.Template.BasePath)
        depth, j = 1, index + 2
        inner: list[Token] = []
        while j < len(toks) and depth:
            if toks[j].kind == "lp":
                depth += 1
            elif toks[j].kind == "rp":
                depth -= 1
                if depth == 0:
                    break
            inner.append(toks[j])
            j += 1
        path = _base_path_include(inner)
        if path is not None:
            region.paths.add(path)
            return
    region.uncertain.append("a template name built at render time (include of a non-literal name)")


def _is_base_path(tok: Token) -> bool:
    return tok.kind in ("field", "var") and tok.fields[-2:] == ("Template", "BasePath")


def _base_path_include(inner: list[Token]) -> str | None:
    if not inner or inner[0].kind != "ident" or inner[0].fields:
        return None
    args = inner[1:]
    if inner[0].text == "print" and args and _is_base_path(args[0]) and all(t.kind == "str" for t in args[1:]):
        return "".join(t.text for t in args[1:])
    if inner[0].text == "printf" and len(args) == 2 and args[0].kind == "str" and _is_base_path(args[1]) \
            and args[0].text.startswith("%s") and args[0].text.count("%") == 1:
        return args[0].text[2:]
    if inner[0].text == "printf" and len(args) >= 2 and args[0].kind == "str" and args[0].text == "%s/%s" \
            and _is_base_path(args[1]) and len(args) == 3 and args[2].kind == "str":
        return "/" + args[2].text
    return None


def _files_reference(toks: list[Token], index: int, tok: Token, region: Region) -> None:
    """``.Files.Get "x"`` / ``.Files.Glob "p"``: the files whose text reaches the template."""
    position = tok.fields.index("Files")
    method = tok.fields[position + 1] if position + 1 < len(tok.fields) else None
    argument = toks[index + 1] if index + 1 < len(toks) else None
    if method in ("Get", "GetBytes", "Lines") and argument is not None and argument.kind == "str":
        region.files.add(argument.text)
    elif method == "Glob" and argument is not None and argument.kind == "str" and not set(argument.text) & set("{}[]\\"):
        region.files.add("glob:" + argument.text)
    else:
        region.files.add("*")


def glob_matches(pattern: str, path: str) -> bool:
    """Helm's ``.Files.Glob`` (gobwas/glob with ``/`` as separator), for the patterns kept literal."""
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.fullmatch(regex, path) is not None


# --------------------------------------------------------------------------- where the root goes

@dataclass(frozen=True)
class Mutation:
    """A change to a map the region did not create: ``mustMerge .Values.a .Values.b``, ``set .Values "x" 1``.

    ``target`` and ``sources`` are values paths (``("a",)`` for ``.Values.a``), None when unknown.
    """

    function: str
    target: tuple[str, ...] | None
    sources: tuple[tuple[str, ...] | None, ...] = ()


@dataclass
class Flow:
    """What one evaluation of a region found, under assumptions about the root."""

    keys: set[str] = field(default_factory=set)      # dict keys that may hold the root
    calls: dict[str, bool] = field(default_factory=dict)  # template name -> called with a root-holding argument
    dumps: bool = False                              # a root printed, serialised or compared
    mutations: list[Mutation] = field(default_factory=list)  # maps it did not create, changed

    @property
    def mutates(self) -> bool:
        return bool(self.mutations)


def values_path(op: Operand) -> tuple[str, ...] | None:
    """``.Values.a.b`` (on any base) -> ("a", "b"); None for anything else."""
    if op.kind in ("field", "var") and "Values" in op.fields:
        position = len(op.fields) - 1 - op.fields[::-1].index("Values")
        return op.fields[position + 1:]
    return None


class _Evaluator:
    def __init__(self, entry_root: bool, keys: frozenset[str]):
        self.entry_root = entry_root
        self.keys = keys
        self.flow = Flow()
        self.root_vars: set[str] = {"$"} if entry_root else set()
        self.fresh_vars: dict[str, int] = {}
        #: Variables known to hold only new maps or parts of one values subtree: the subtree's path
        #: (``$set`` ranging over ``.Values.workers.celery.sets``); a variable not here may hold anything.
        self.var_paths: dict[str, tuple[str, ...] | None] = {}

    # An operand's value: (may hold the root, freshness).  Freshness: 0 shared with others,
    # 1 a new map or list (its members may be shared), 2 new all the way down (a deep copy).
    def operand(self, op: Operand, dot_root: bool) -> tuple[bool, int]:
        if op.kind in ("str", "lit"):
            return False, 2
        if op.kind == "dot":
            return dot_root, 0
        if op.kind == "fn":
            if op.fields:
                return self._chain(False, op.fields), 0
            return False, 2 if op.text in _FRESH else 0  # a function called without arguments
        if op.kind == "var":
            fresh = self.fresh_vars.get(op.text, 0)
            if not op.fields:
                return op.text in self.root_vars, fresh
            return self._chain(op.text in self.root_vars, op.fields), 2 if fresh == 2 else 0
        if op.kind == "field":
            return self._chain(dot_root, op.fields), 0
        if op.kind == "group" and op.group is not None:
            root, fresh = self.pipeline(op.group, dot_root, printed=False)
            if op.fields:
                return self._chain(root, op.fields), 2 if fresh == 2 else 0
            return root, fresh
        return True, 0

    def _chain(self, base_root: bool, fields: tuple[str, ...]) -> bool:
        if not fields:
            return base_root
        return fields[-1] in self.keys

    def pipeline(self, pipeline: Pipeline, dot_root: bool, *, printed: bool, ranged: bool = False) -> tuple[bool, int]:
        """Where the root goes in ``pipeline``: (its value may hold the root, freshness).  ``ranged``: its
        variables take the value's members (a range), which a new list of shared maps does not make new."""
        piped: tuple[bool, int] | None = None
        result: tuple[bool, int] = (False, 0)
        for command in pipeline.commands:
            result = self.command(command, dot_root, piped)
            piped = result
        if pipeline.decl:
            subtree = self.subtree(pipeline, dot_root)
            for name in pipeline.decl:
                if result[0]:
                    self.root_vars.add(name)
                # Assigned twice: the subtree holding both values.
                self.var_paths[name] = _union(self.var_paths[name], subtree) if name in self.var_paths else subtree
                # A variable assigned twice is as fresh as its least fresh value.
                fresh = result[1] if not ranged or result[1] == 2 else 0
                self.fresh_vars[name] = min(fresh, self.fresh_vars.get(name, 2))
        elif printed and result[0]:
            self.flow.dumps = True
        return result

    def subtree(self, pipeline: Pipeline, dot_root: bool) -> tuple[str, ...] | None:
        """The values subtree holding every map ``pipeline``'s value may share: ``()`` when it shares
        none (all new), None when unknown.  Read for a merge or ``set`` whose target is a variable."""
        found: tuple[str, ...] | None = ()
        for position, command in enumerate(pipeline.commands):
            head, args = command.operands[0], command.operands[1:]
            piped = [found] if position else []
            if head.kind != "fn" or head.fields:
                found = None if args or piped else self._operand_subtree(head, dot_root)
            elif head.text in _DEEP_COPIES:
                found = ()
            elif head.text in _SUBTREE_UNIONS:
                found = ()
                for part in [self._operand_subtree(op, dot_root) for op in args] + piped:
                    found = _union(found, part)
            else:
                return None
            if found is None:
                return None
        return found

    def _operand_subtree(self, op: Operand, dot_root: bool) -> tuple[str, ...] | None:
        if op.kind == "group":
            return self.subtree(op.group, dot_root) if op.group is not None and not op.fields else None
        if op.kind in ("str", "lit") or (op.kind == "fn" and not op.fields):
            return ()
        path = values_path(op)
        if path:
            return path
        if op.kind == "var":
            base = self.var_paths.get(op.text)
            return None if base is None or (op.fields and not base) else base + op.fields
        return None

    def command(self, command: Command, dot_root: bool, piped: tuple[bool, int] | None) -> tuple[bool, int]:
        head = command.operands[0]
        args = [self.operand(op, dot_root) for op in command.operands[1:]]
        if piped is not None:
            args.append(piped)
        any_root = any(root for root, _ in args)
        if head.kind != "fn" or head.fields:
            value = self.operand(head, dot_root)
            if not command.operands[1:] and piped is None:
                return value
            # A method call (.Files.Get "x", .Capabilities.APIVersions.Has "y") or a value with arguments.
            if any_root:
                self.flow.dumps = True
            return False, 0
        name = head.text
        if name in ("include", "template", "tpl"):
            literal = command.operands[1] if len(command.operands) > 1 else None
            if name != "tpl" and literal is not None and literal.kind == "str":
                self.flow.calls[literal.text] = self.flow.calls.get(literal.text, False) or any_root
            return False, 2
        if name in _MUTATORS:
            target = args[0] if args else (False, 2)
            if not target[1]:
                operands = command.operands[1:]
                path = values_path(operands[0]) if operands else None
                if path is None and operands and operands[0].kind == "var":
                    # A variable holding part of one values subtree changes that subtree only.
                    base = self.var_paths.get(operands[0].text)
                    path = base + operands[0].fields if base else None
                if name in ("set", "unset"):
                    key = operands[1] if len(operands) > 1 else None
                    path = path + (key.text,) if path is not None and key is not None and key.kind == "str" else None
                    self.flow.mutations.append(Mutation(name, path))
                else:
                    sources = tuple(values_path(op) for op in operands[1:])
                    if piped is not None:
                        sources += (None,)
                    self.flow.mutations.append(Mutation(name, path, sources))
        if name in ("dict", "set"):
            operands = command.operands[1:]
            for position, (root, _) in enumerate(args):
                if not root:
                    continue
                key = operands[position - 1] if 0 < position <= len(operands) else None
                if name == "set" and position == 0:
                    continue  # the map being changed
                if key is not None and key.kind == "str":
                    self.flow.keys.add(key.text)
                else:
                    self.flow.dumps = True
        deep = 2 if all(fresh == 2 for _, fresh in args) else 1
        if name in ("list", "tuple"):
            for position, (root, _) in enumerate(args):
                if root:
                    self.flow.keys.add(f"#{position}")
        if name in ("append", "prepend", "mustAppend", "mustPrepend", "concat") and any_root:
            self.flow.keys.add("#*")
        if name in ("index", "get") and args:
            member = 2 if args[0][1] == 2 else 0
            if not args[0][0]:
                return False, member
            keys = command.operands[2:]
            if not keys or not all(op.kind in ("str", "lit") for op in keys):
                return True, member
            if keys[0].kind == "str" and keys[0].text in _SAFE_ROOT_FIELDS:
                return False, member
            last = keys[-1]
            if last.kind == "str":
                return last.text in self.keys, member
            if last.text.isdigit():
                return f"#{int(last.text)}" in self.keys or "#*" in self.keys, member
            return True, member
        if name in ("first", "last", "mustFirst", "mustLast") and any_root:
            return any(key.startswith("#") for key in self.keys), 0
        if name in _DEEP_COPIES:
            return any_root, 2
        if name in ("merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite"):
            return any_root, deep if args and args[0][1] else 0
        if name in _CARRIERS:
            return any_root, deep if name in _FRESH else 0
        if name in _INSPECTORS:
            return False, 2
        if any_root:
            self.flow.dumps = True
        return False, 2 if name in _FRESH else 0


def _union(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The subtree holding what two subtrees hold (``()`` holds nothing shared; None: unknown)."""
    if a is None or b is None:
        return None
    if not a or not b:
        return a or b
    shared = 0
    while shared < min(len(a), len(b)) and a[shared] == b[shared]:
        shared += 1
    return a[:shared] or None  # nothing in common: anywhere in values


def evaluate(region: Region, entry_root: bool, keys: frozenset[str]) -> Flow:
    """Where the root goes in ``region``, if it starts with the root (``entry_root``) and ``keys`` hold it."""
    return _evaluate(id(region), region, entry_root, keys)


_FLOWS: dict[tuple[int, bool, frozenset[str]], tuple[Region, Flow]] = {}


def _evaluate(key: int, region: Region, entry_root: bool, keys: frozenset[str]) -> Flow:
    cached = _FLOWS.get((key, entry_root, keys))
    if cached is not None and cached[0] is region:
        return cached[1]
    evaluator = _Evaluator(entry_root, keys)
    # Two passes: a variable assigned below its first use (inside a loop) still counts.
    for _ in range(2):
        dots = [entry_root]
        for statement in region.statements:
            keyword = statement.keyword
            if keyword in ("", "template", "block"):
                if statement.pipeline is not None:
                    root, _ = evaluator.pipeline(statement.pipeline, dots[-1], printed=keyword == "")
                    if keyword and statement.name:
                        evaluator.flow.calls[statement.name] = evaluator.flow.calls.get(statement.name, False) or root
                elif keyword and statement.name:
                    evaluator.flow.calls.setdefault(statement.name, False)
                continue
            if keyword == "end":
                if len(dots) > 1:
                    dots.pop()
                continue
            # The dot outside the innermost block: where else-branches start again.
            outer = dots[-2] if keyword.startswith("else") and len(dots) > 1 else dots[-1]
            root = evaluator.pipeline(statement.pipeline, outer, printed=False, ranged=keyword.endswith("range"))[0] \
                if statement.pipeline is not None else False
            if keyword in ("range", "else range") and root:
                evaluator.flow.dumps = True  # walking a root visits every field of it
            inside = {"if": outer, "else if": outer, "else": outer, "with": root, "else with": root,
                      "range": False, "else range": False}[keyword]
            if keyword.startswith("else"):
                dots[-1] = inside
            else:
                dots.append(inside)
    if len(_FLOWS) > 65536:
        _FLOWS.clear()
    _FLOWS[(key, entry_root, keys)] = (region, evaluator.flow)
    return evaluator.flow
