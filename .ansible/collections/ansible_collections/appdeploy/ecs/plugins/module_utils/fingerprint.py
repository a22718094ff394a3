# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content fingerprint of a Docker build, independent of any Docker cache.

The fingerprint hashes exactly what a build can see: the Dockerfile, every file and directory of the build context
that ``.dockerignore`` lets through (path, type, permission bits, content or link target; never mtimes or owners),
the build args, the target stage and the platform. Paths are sorted, so it is stable across runs and machines.

``.dockerignore`` is interpreted the way the Docker CLI and the Docker SDK for Python do it (moby patternmatcher):
comments and blank lines are skipped, patterns are cleaned (``./a/`` is ``a``, a leading ``/`` is dropped), ``*`` and
``?`` never match ``/``, ``**`` matches any number of directories, a pattern that matches a parent directory matches
everything below it, the last matching pattern wins, and ``!pattern`` re-includes. An excluded directory is not
descended into unless an exception pattern starts with that directory's path.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat

FINGERPRINT_VERSION = "appdeploy.ecs/fingerprint/v1"
FINGERPRINT_TAG_PREFIX = "fp-"


class FingerprintError(Exception):
    pass


def _clean(pattern):
    """filepath.Clean + ToSlash + strip one leading '/', as the Docker CLI's dockerignore.ReadAll does."""
    if not pattern:
        return pattern
    cleaned = posixpath.normpath(pattern)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if len(cleaned) > 1 and cleaned.startswith("/"):
        cleaned = cleaned[1:]
    return cleaned


def parse_dockerignore(text):
    """Return a list of (pattern, exclusion) tuples from the text of a .dockerignore file."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        if not line:
            continue
        patterns.append((_clean(line), exclusion))
    return patterns


def _pattern_to_regex(pattern):
    """Translate one cleaned pattern to an anchored regular expression (moby patternmatcher semantics)."""
    out = "^"
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                if i + 1 >= n:
                    out += ".*"
                else:
                    out += "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                out += re.escape(pattern[i])
            else:
                out += re.escape(ch)
        elif ch == "[":
            # character class, copied through up to the closing bracket; '!' negation as in Go's filepath.Match
            j = pattern.find("]", i + 1)
            if j == -1:
                raise FingerprintError("invalid .dockerignore pattern %r: unterminated character class" % pattern)
            body = pattern[i + 1:j]
            if body.startswith("!"):
                body = "^" + body[1:]
            out += "[" + body.replace("\\", "\\\\") + "]"
            i = j
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$", re.DOTALL)


class DockerIgnore:
    """Decide whether a context-relative path (with '/' separators) is excluded from the build context."""

    def __init__(self, patterns):
        self.patterns = [(p, excl, _pattern_to_regex(p)) for p, excl in patterns]

    @classmethod
    def from_text(cls, text):
        return cls(parse_dockerignore(text))

    @property
    def has_exceptions(self):
        return any(excl for _p, excl, _r in self.patterns)

    def excluded(self, relpath):
        """MatchesOrParentMatches: a pattern matching the path or any parent directory of it counts."""
        matched = False
        parent = posixpath.dirname(relpath)
        parents = parent.split("/") if parent else []
        for _pattern, exclusion, regex in self.patterns:
            # an inclusion that already matched, or an exception when nothing matched yet, cannot change the result
            if exclusion != matched:
                continue
            hit = bool(regex.match(relpath))
            if not hit and parents:
                for i in range(len(parents)):
                    if regex.match("/".join(parents[:i + 1])):
                        hit = True
                        break
            if hit:
                matched = not exclusion
        return matched

    def may_descend(self, reldir):
        """Whether an excluded directory must still be walked because an exception pattern lies below it."""
        prefix = reldir + "/"
        for pattern, exclusion, _regex in self.patterns:
            if exclusion and (pattern + "/").startswith(prefix):
                return True
        return False


class ContextEntries(list):
    """The sorted (relpath, abspath, lstat) entries sent to the engine. ``forced`` names the files sent although
    .dockerignore excludes them (the Dockerfile, .dockerignore): the daemon reads them, then drops them from the
    context, so they never reach the image and are not hashed as context files."""

    def __init__(self, items=(), forced=()):
        super().__init__(items)
        self.forced = set(forced)


def context_entries(path, dockerfile="Dockerfile"):
    """Walk the build context and return the sorted list of (relpath, abspath, lstat) that Docker would send.

    ``dockerfile`` is relative to ``path`` (or absolute). The Dockerfile and .dockerignore themselves are always sent
    (Docker needs them), whatever .dockerignore says.
    """
    root = os.path.abspath(path)
    if not os.path.isdir(root):
        raise FingerprintError("build context %s is not a directory" % root)
    ignore_file = os.path.join(root, ".dockerignore")
    ignore = DockerIgnore([])
    if os.path.isfile(ignore_file):
        with open(ignore_file, "r", encoding="utf-8", errors="surrogateescape") as f:
            ignore = DockerIgnore.from_text(f.read())
    always = {".dockerignore"}
    df_rel = dockerfile_relpath(root, dockerfile)
    if df_rel is not None:
        always.add(df_rel)

    entries = []
    forced = set()

    def walk(absdir, reldir):
        try:
            names = sorted(os.listdir(absdir))
        except OSError as e:
            raise FingerprintError("cannot read %s: %s" % (absdir, e))
        for name in names:
            abspath = os.path.join(absdir, name)
            rel = name if not reldir else reldir + "/" + name
            st = os.lstat(abspath)
            is_dir = stat.S_ISDIR(st.st_mode)
            if ignore.excluded(rel):
                if rel in always and not is_dir:
                    forced.add(rel)
                else:
                    if is_dir and ignore.has_exceptions and ignore.may_descend(rel):
                        walk(abspath, rel)
                    continue
            entries.append((rel, abspath, st))
            if is_dir:
                walk(abspath, rel)

    walk(root, "")
    entries.sort(key=lambda e: e[0])
    return ContextEntries(entries, forced)


def dockerfile_relpath(root, dockerfile):
    """The Dockerfile's path relative to the context root, or None when it lies outside the context."""
    df = dockerfile if os.path.isabs(dockerfile) else os.path.join(root, dockerfile)
    df = os.path.abspath(df)
    rel = os.path.relpath(df, root)
    if rel.startswith(".." + os.sep) or rel == "..":
        return None
    return rel.replace(os.sep, "/")


def _file_digest(abspath):
    h = hashlib.sha256()
    with open(abspath, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(path, dockerfile="Dockerfile", build_args=None, target=None, platform=None, entries=None):
    """Return (fingerprint_hex, entries) for a build. ``entries`` may be passed in to avoid walking twice."""
    root = os.path.abspath(path)
    df_abs = dockerfile if os.path.isabs(dockerfile) else os.path.join(root, dockerfile)
    if not os.path.isfile(df_abs):
        raise FingerprintError("Dockerfile %s not found" % df_abs)
    if entries is None:
        entries = context_entries(root, dockerfile)
    h = hashlib.sha256()

    def feed(*parts):
        for p in parts:
            data = p.encode("utf-8", "surrogateescape") if isinstance(p, str) else p
            h.update(str(len(data)).encode() + b":" + data)

    feed(FINGERPRINT_VERSION)
    feed("dockerfile", _file_digest(df_abs))
    feed("build_args", json.dumps({str(k): str(v) for k, v in (build_args or {}).items()}, sort_keys=True))
    feed("target", target or "", "platform", platform or "")
    forced = getattr(entries, "forced", set())
    for rel, abspath, st in entries:
        if rel in forced:
            continue  # sent for the daemon's sake only; the Dockerfile's content is hashed above
        mode = "%o" % stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            feed("dir", rel, mode)
        elif stat.S_ISLNK(st.st_mode):
            feed("symlink", rel, os.readlink(abspath))
        elif stat.S_ISREG(st.st_mode):
            feed("file", rel, mode, _file_digest(abspath))
        else:
            # sockets, fifos, devices: Docker sends their header only
            feed("special", rel, mode, str(stat.S_IFMT(st.st_mode)))
    return h.hexdigest(), entries


def fingerprint_tag(fp):
    return FINGERPRINT_TAG_PREFIX + fp[:40]
