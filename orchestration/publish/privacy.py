"""Privacy checks on a built publication, before it is released.

1. No site package names another site or holds another site's cases: no
   other site's code or display name, and no case number of another site,
   appears in any file of the package (XLSX files are read inside their zip).
2. No direct identifier: no column named as a dictionary direct identifier
   or its pseudonym, and no pseudonymised patient key, appears in any
   published file.
3. No published count from 1 to the small-cell threshold in any table of a
   site package.

A name "appears" when it occurs as a whole word: not preceded or followed by
a letter or digit (``S01`` does not appear in ``S010``). A case number
appears when it is one of the file's tokens (``[A-Za-z0-9][A-Za-z0-9_-]{2,}``).

How it stays fast for 700 packages (each holding every peer's blinded code):
each file is read once and split into its set of words (runs of letters and
digits) with ``bytes.translate``; a name can only occur where all its words
occur, so the 1,400 names of the other sites are looked up in that set, and
only a name whose words are all present is searched for in the text.

The case numbers and patient keys looked for (ten million each at national
scale) are held as sorted 64-bit hashes (``HashedStrings``), not as Python
strings: 160 MB instead of several GiB, shared by the forked workers. Equal
strings have equal hashes, so nothing present is missed; a token whose hash
merely collides with a case number of another site (odds about 1 in 10^12
per publication) would withhold a clean publication, never release a leak.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from html import unescape
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..registry import Registry
from .privacy_memory import ContentMemory, KnownContent, context_digest

COUNT_COLUMNS = ("cases", "observed")
HEX_TOKEN = re.compile(r"\b[0-9a-f]{64}\b")
FILES_PER_TASK = 120     # files per worker task (about 20 packages)
_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_WORDS = bytes(c if c in _ALNUM else 32 for c in range(256))                # letters and digits
_TOKENS = bytes(c if c in _ALNUM + b"_-" else 32 for c in range(256))      # ... and _ -
_XLSX_TEXT = re.compile(r"<t(?:\s[^>]*)?>([^<]*)</t>|<v>([^<]*)</v>")
_SHARED_INDEX = re.compile(r'<c\s[^>]*\bt="s"[^>]*>\s*<v>[^<]*</v>')


def _xlsx_rows(source: Path | io.BytesIO, parsed: dict[str, str] | None = None) -> list[str]:
    """A workbook's cell values, a row per line and tab-separated (shared strings one per line;
    shared-string indices left out, XML entities decoded). Equal rows give equal lines; ``parsed``
    keeps the line of each row's XML, so that rows every package repeats are parsed once."""
    parsed = {} if parsed is None else parsed
    rows = []
    with zipfile.ZipFile(source) as archive:
        for name in archive.namelist():
            if not (name.startswith("xl/worksheets/") or name == "xl/sharedStrings.xml") or not name.endswith(".xml"):
                continue
            xml = archive.read(name).decode("utf-8", errors="replace")
            if 't="s"' in xml:
                xml = _SHARED_INDEX.sub("", xml)
            for chunk in xml.split("</row>" if name != "xl/sharedStrings.xml" else "</si>"):
                line = parsed.get(chunk)
                if line is None:
                    line = "\t".join(a or b for a, b in _XLSX_TEXT.findall(chunk))
                    line = parsed[chunk] = unescape(line) if "&" in line else line
                rows.append(line)
    return rows


def _xlsx_text(source: Path | io.BytesIO) -> str:
    return "\n".join(_xlsx_rows(source))


def _is_word_char(char: str) -> bool:
    return char.isascii() and char.isalnum()


@dataclass(frozen=True, eq=False)
class Name:
    """A name to look for as a whole word, with the words (runs of letters and digits) it is made of."""

    text: str
    what: str

    @cached_property
    def words(self) -> tuple[bytes, ...]:
        return tuple(self.text.encode("utf-8").translate(_WORDS).split())

    @cached_property
    def pattern(self) -> re.Pattern:
        return re.compile(r"(?<![A-Za-z0-9])" + re.escape(self.text) + r"(?![A-Za-z0-9])")

    @property
    def multiline(self) -> bool:
        return "\n" in self.text or "\r" in self.text

    def occurs(self, text: str, words: set[bytes], found: dict[str, list[int]] | None = None) -> bool:
        """Whether the name occurs in ``text`` (whose words are ``words``) as a whole word.

        ``found`` keeps where each first word occurs in ``text``, for the many names that start alike.
        """
        if not self.words:
            return bool(self.pattern.search(text))
        if not all(w in words for w in self.words):
            return False
        if len(self.words) == 1 and self.words[0] == self.text.encode("utf-8"):
            return True     # a name that is one word occurs exactly when that word does
        first = self.words[0].decode("ascii")
        found = {} if found is None else found
        if first not in found:
            found[first] = _positions(text, first)
        offset, size = self.text.index(first), len(self.text)
        for at in found[first]:
            start = at - offset
            if start >= 0 and text.startswith(self.text, start) \
                    and (start == 0 or not _is_word_char(text[start - 1])) \
                    and (start + size == len(text) or not _is_word_char(text[start + size])):
                return True
        return False


def _positions(text: str, word: str) -> list[int]:
    out, at = [], text.find(word)
    while at >= 0:
        out.append(at)
        at = text.find(word, at + 1)
    return out


def _words(data: bytes) -> set[bytes]:
    return set(data.translate(_WORDS).split())


def _tokens(data: bytes) -> set[bytes]:
    """Tokens as ``[A-Za-z0-9][A-Za-z0-9_-]{2,}`` finds them (leading _ and - are not part of one)."""
    runs = set(data.translate(_TOKENS).split())
    odd = {t for t in runs if len(t) < 3 or t[0] in b"_-"}
    return (runs - odd) | {s for s in (t.lstrip(b"_-") for t in odd) if len(s) >= 3}


def _hashes(strings) -> np.ndarray:
    return pd.util.hash_array(np.asarray(strings, dtype=object), categorize=False)


class HashedStrings:
    """A large set of strings (each with an owner: the sites of a case number) as sorted 64-bit hashes.

    Most tokens of a published file (words, numbers of a chart) are not case numbers; a bit filter
    over the hashes (32 MB, about 4% of its bits set by ten million strings) turns them away in one
    memory access each, and only the rest are searched for in the sorted hashes.
    """

    FILTER_BITS = 1 << 28
    FILTER_FROM = 1 << 16      # smaller sets are searched directly

    def __init__(self, hashes: np.ndarray, owners: np.ndarray | None = None, names: list[str] | None = None):
        order = np.argsort(hashes)
        self.hashes = hashes[order]
        self.owners = owners[order] if owners is not None else None
        self.names = names or []
        self.filter = None
        if len(self.hashes) >= self.FILTER_FROM:
            slots = (self.hashes & np.uint64(self.FILTER_BITS - 1)).astype(np.int64)
            if len(slots) < self.FILTER_BITS // 128:     # few: set them in the packed bytes (half the time)
                self.filter = np.zeros(self.FILTER_BITS // 8, dtype=np.uint8)
                np.bitwise_or.at(self.filter, slots >> 3, np.left_shift(1, slots & 7).astype(np.uint8))
            else:                                        # many: one byte a bit, then packed
                bits = np.zeros(self.FILTER_BITS, dtype=bool)
                bits[slots] = True
                self.filter = np.packbits(bits, bitorder="little")

    @classmethod
    def of(cls, strings) -> "HashedStrings":
        return cls(_hashes(list(strings)))

    @classmethod
    def of_pairs(cls, pairs) -> "HashedStrings":
        """From (site_id, case_id) pairs: a frame, or an Arrow table or record-batch reader."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(pairs, pd.DataFrame):
            table = pa.table({"site_id": [str(s) for s in pairs["site_id"]],
                              "case_id": [None if pd.isna(c) else str(c) for c in pairs["case_id"]]})
        else:
            table = pairs.read_all() if hasattr(pairs, "read_all") else pairs
        table = table.filter(pc.is_valid(table.column("case_id")))
        sites = pc.dictionary_encode(table.column("site_id")).combine_chunks()
        return cls(_hashes(table.column("case_id").to_numpy(zero_copy_only=False)),
                   sites.indices.to_numpy(zero_copy_only=False).astype(np.int32), sites.dictionary.to_pylist())

    def __bool__(self) -> bool:
        return len(self.hashes) > 0

    def found(self, tokens, hashed: np.ndarray | None = None) -> dict[str, frozenset]:
        """The tokens in the set, each with its owners (empty without owners); ``hashed``: their hashes."""
        tokens = list(tokens)
        if not tokens or not len(self.hashes):
            return {}
        return {tokens[i]: owners for i, owners in self._lookup(_hashes(tokens) if hashed is None else hashed)}

    def owners_of(self, hashed: np.ndarray) -> list[frozenset]:
        """The owners of each hash of ``hashed`` that is in the set."""
        return [owners for _, owners in self._lookup(hashed)] if len(self.hashes) and len(hashed) else []

    def _lookup(self, wanted: np.ndarray):
        """(position in ``wanted``, owners) of each hash in the set."""
        positions = np.arange(len(wanted))
        if self.filter is not None:
            slots = (wanted & np.uint64(self.FILTER_BITS - 1)).astype(np.int64)
            positions = np.flatnonzero((self.filter[slots >> 3] >> (slots & 7).astype(np.uint8)) & 1)
            wanted = wanted[positions]
        start = np.searchsorted(self.hashes, wanted, side="left")
        end = np.searchsorted(self.hashes, wanted, side="right")
        for i, a, b in zip(positions.tolist(), start.tolist(), end.tolist()):
            if b > a:
                yield i, (frozenset() if self.owners is None else
                          frozenset(self.names[j] for j in self.owners[a:b].tolist()))


@dataclass
class Hits:
    """What a piece of published text contains of the things looked for."""

    names: set = field(default_factory=set)        # Name objects found
    cases: dict = field(default_factory=dict)      # case numbers found -> the sites they belong to
    keys: set = field(default_factory=set)         # 64-hex tokens: what may be pseudonymised patient keys
    hashes: list = field(default_factory=list)     # arrays of the 64-bit hashes of its tokens

    def update(self, other: "Hits") -> None:
        self.names |= other.names
        self.cases |= other.cases
        self.keys |= other.keys
        self.hashes += other.hashes

    def token_hashes(self) -> np.ndarray:
        """The hashes of every token, once each, sorted."""
        return np.unique(np.concatenate(self.hashes)) if self.hashes else np.zeros(0, dtype=np.uint64)


class Scanner:
    """Looks for names, case numbers and patient-key candidates in published files.

    Site tables and workbooks are read line by line (row by row) and each
    distinct line is scanned once: every package repeats the comparison with
    the same peers, so 700 packages cost little more than one. A file's hits
    are the union of its lines' hits, since no word, token or name (but one
    with a line break, looked for in the whole text) crosses a line end.
    """

    def __init__(self, names: list[Name], cases: HashedStrings | None = None):
        self.names = [n for n in names if not n.multiline]
        self.multiline = [n for n in names if n.multiline]
        self.cases = cases if cases is not None else HashedStrings.of([])
        frequency: dict[bytes, int] = {}
        for name in self.names:
            for word in set(name.words):
                frequency[word] = frequency.get(word, 0) + 1
        self.index: dict[bytes, list[Name]] = {}   # each name under its rarest word
        self.wordless = []
        for name in self.names:
            if name.words:
                self.index.setdefault(min(name.words, key=lambda w: (frequency[w], w)), []).append(name)
            else:
                self.wordless.append(name)
        self.keys = frozenset(self.index)
        self.cache: dict[str, Hits] = {}
        self.seen: set[str] = set()
        self.rows: dict[str, str] = {}       # workbook row XML -> its line of text

    def scan(self, text: str) -> Hits:
        data = text.encode("utf-8")
        words = _words(data)
        hits, found = Hits(), {}
        for key in words & self.keys:
            hits.names.update(n for n in self.index[key] if n.occurs(text, words, found))
        hits.names.update(n for n in self.wordless if n.occurs(text, words, found))
        tokens = [t.decode("ascii") for t in _tokens(data)]
        if tokens:
            hashed = _hashes(tokens)
            hits.hashes.append(hashed)
            hits.cases = self.cases.found(tokens, hashed)
        if 64 in set(map(len, words)):
            hits.keys = set(HEX_TOKEN.findall(text))
        return hits

    def scan_lines(self, lines: list[str]) -> Hits:
        """Hits of the text made of ``lines``: a line seen before is looked up, new lines are scanned
        together (a line is cached once it shows up a second time)."""
        hits, new = Hits(), []
        for line in lines:
            found = self.cache.get(line)
            if found is None:
                if line not in self.seen:
                    self.seen.add(line)
                    new.append(line)
                    continue
                found = self.cache[line] = self.scan(line)
            hits.update(found)
        if new:
            hits.update(self.scan("\n".join(new)))
        return hits

    def file(self, path: Path, data: bytes) -> tuple[Hits, str | None]:
        """The file's hits (``data``: its bytes) and its text (None for a workbook)."""
        text = None
        if path.suffix == ".xlsx":
            hits = self.scan_lines(_xlsx_rows(io.BytesIO(data), self.rows))
        else:
            text = data.decode("utf-8", errors="replace")
            hits = self.scan_lines(text.split("\n")) if path.suffix == ".csv" else self.scan(text)
        if self.multiline:
            whole = _xlsx_text(io.BytesIO(data)) if text is None else text
            hits.names.update(n for n in self.multiline if n.pattern.search(whole))
        return hits, text


def _site_names(sites: pd.DataFrame) -> list[tuple[str, Name]]:
    """(site, name) for every site's code, then every site's display name: the order problems are listed in."""
    ids = [(str(s), Name(str(s), f"site {s}")) for s in sites["site_id"]]
    names = [(str(s), Name(str(n), f"the name of site {s}")) for s, n in zip(sites["site_id"], sites["display_name"])]
    return ids + names


def _case_index(case_ids, memory_dir: Path | None = None) -> HashedStrings:
    """The sites of each case number: from a (site_id, case_id) frame, an object with ``case_owners()``
    (orchestration/publish/inputs.py's CaseFile) or an index already built.

    With a ``memory_dir`` and a case file of per-site files, each site's hashes are kept and only
    changed sites are read (privacy_memory.site_case_hashes)."""
    if isinstance(case_ids, HashedStrings):
        return case_ids
    if isinstance(case_ids, pd.DataFrame):
        return HashedStrings.of_pairs(case_ids)
    fingerprints = case_ids.fingerprints() if memory_dir is not None else {}
    if not fingerprints or set(fingerprints) != set(case_ids.site_ids()):
        return HashedStrings.of_pairs(case_ids.case_owners())
    from .privacy_memory import site_case_hashes

    kept = site_case_hashes(memory_dir, fingerprints, lambda site: _hashes(case_ids.site_case_ids(site)))
    names = sorted(kept)
    return HashedStrings(np.concatenate([kept[site] for site in names] or [np.zeros(0, dtype=np.uint64)]),
                         np.repeat(np.arange(len(names), dtype=np.int32), [len(kept[site]) for site in names]),
                         names)


def _key_lookup(patient_keys) -> Callable[[set[str]], set[str]]:
    """Which of some 64-hex tokens are pseudonymised patient keys: ``patient_keys`` is such a function
    (the publication's looks them up in the warehouse), a ``HashedStrings`` index or a set of keys."""
    if callable(patient_keys):
        return patient_keys
    if isinstance(patient_keys, HashedStrings):
        return lambda candidates: set(patient_keys.found(candidates))
    keys = set(patient_keys or ())
    return lambda candidates: candidates & keys


def _foreign(owners: frozenset, own: str) -> bool:
    """A case number is another site's unless this site alone uses it."""
    return owners != {own}


def _identifier_names(registry: Registry) -> list[Name]:
    banned = {v.name for v in registry.direct_identifiers} | {v.pseudonymise.output for v in registry.direct_identifiers}
    return [Name(b, b) for b in sorted(banned)]


def _published(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "inputs" not in p.relative_to(folder).parts)


@dataclass
class FileFindings:
    """One file's problems of kinds 1, 2 and 3, but patient keys: its 64-hex tokens are looked up once for all."""

    relative: str
    cross_site: list[str]
    identifier: list[str]
    hex_tokens: set[str]
    counts: list[str]


class Checks:
    """The three checks over one publication folder, each file read and scanned once.

    With a ``memory_dir``, a file whose content an earlier publication's checks scanned is not
    scanned again (orchestration/publish/privacy_memory.py): the verdict is the same.
    """

    def __init__(self, folder: Path, *, sites: pd.DataFrame | None = None, case_ids=None,
                 registry: Registry | None = None, patient_keys=None):
        self.folder = folder
        self.site_names = _site_names(sites) if sites is not None else []
        self.identifiers = _identifier_names(registry) if registry is not None else []
        self.names = [n for _, n in self.site_names] + self.identifiers
        self.positions = {name: i for i, name in enumerate(self.names)}
        self.scanner = Scanner(self.names, _case_index(case_ids) if case_ids is not None else None)
        self.patient_keys = _key_lookup(patient_keys)
        self.cells: dict[tuple, tuple] = {}      # CSV line and count columns -> their cells

    def count_columns(self, text: str, threshold: int) -> tuple[str, ...]:
        """Check 3 over one CSV table: the count columns (read as text, as ``pd.read_csv(dtype=str)``
        would) holding a count from 1 to ``threshold``."""
        header_line, _, body = text.partition("\n")
        if '"' in text or "\r" in text:        # quoted fields: the csv module splits the records
            rows = list(csv.reader(io.StringIO(text)))
            header, records = (rows[0] if rows else []), rows[1:]
        else:                                    # one record per line, fields split at commas
            header, records = header_line.split(","), None
        wanted = [(c, header.index(c)) for c in COUNT_COLUMNS if c in header]
        if not wanted:
            return ()
        columns = tuple(i for _, i in wanted)
        values: list[set] = [set() for _ in wanted]
        if records is None:
            for line in body.split("\n"):
                if not line:
                    continue
                cells = self.cells.get((line, columns))
                if cells is None:
                    fields = line.split(",")
                    cells = self.cells[(line, columns)] = tuple(fields[i] if i < len(fields) else None
                                                                for i in columns)
                for seen, cell in zip(values, cells):
                    seen.add(cell)
        else:
            for record in records:
                for seen, i in zip(values, columns):
                    seen.add(record[i] if i < len(record) else None)
        flagged = []
        for (column, _), seen in zip(wanted, values):
            numbers = pd.to_numeric(pd.Series(sorted(seen, key=str), dtype=object), errors="coerce")
            if ((numbers >= 1) & (numbers <= threshold)).any():
                flagged.append(column)
        return tuple(flagged)

    def run(self, *, cross_site: bool, identifiers: bool, threshold: int | None,
            workers: int | None = 1) -> list[str]:
        """The problems found, kind by kind, in file order; ``workers`` processes share the packages."""
        return [p for kind in self.by_kind(cross_site=cross_site, identifiers=identifiers, threshold=threshold,
                                           workers=workers) for p in kind]

    def by_kind(self, *, cross_site: bool, identifiers: bool, threshold: int | None, workers: int | None = 1,
                memory_dir: Path | None = None) -> tuple[list[str], list[str], list[str]]:
        from .workers import forked_map

        files = _published(self.folder)
        memory = None if memory_dir is None else ContentMemory(
            memory_dir, context_digest([(n.text, n.what) for n in self.names], threshold))
        chunks = [files[i:i + FILES_PER_TASK] for i in range(0, len(files), FILES_PER_TASK)]
        parts = forked_map(lambda chunk: self._run(chunk, cross_site, identifiers, threshold, memory), chunks, workers)
        found = [f for findings, _ in parts for f in findings]
        candidates = set().union(*(f.hex_tokens for f in found))
        patient_keys = self.patient_keys(candidates) if candidates else set()
        problems: tuple[list[str], list[str], list[str]] = ([], [], [])
        for f in found:
            problems[0].extend(f.cross_site)
            problems[1].extend(f.identifier)
            if f.hex_tokens & patient_keys:
                problems[1].append(f"{f.relative} holds pseudonymised patient keys")
            problems[2].extend(f.counts)
        if memory is not None:
            memory.keep({sha: entry for _, entries in parts for sha, entry in entries.items()})
        return problems

    def _recalled(self, memory: ContentMemory | None, sha: str | None, own: str | None,
                  counted: bool) -> KnownContent | None:
        """What an earlier scan found in this content, if it gives this file's verdict without a scan.

        Not when the file is a package table and the scan did not count, nor when one of its tokens
        is now a case number of another site than ``own`` (a scan names the tokens in the problem)."""
        content = memory.known(sha) if memory is not None else None
        if content is None or (counted and content.count_columns is None):
            return None
        if own is not None and any(_foreign(owners, own) for owners in self.scanner.cases.owners_of(content.token_hashes)):
            return None
        return content

    def _run(self, files: list[Path], cross_site: bool, identifiers: bool, threshold: int | None,
             memory: ContentMemory | None) -> tuple[list[FileFindings], dict[str, dict]]:
        """The findings of ``files``; with a memory, the index entries of their contents."""
        found, new, entries = [], {}, {}
        for path in files:
            parts = path.relative_to(self.folder).parts
            relative = str(path.relative_to(self.folder))
            own = parts[1] if len(parts) > 2 and parts[0] == "sites" else None   # the package holding the file
            crossed = cross_site and own is not None
            counted = threshold is not None and parts[0] == "sites" and path.suffix == ".csv"
            if not (identifiers or crossed or counted):
                continue
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest() if memory is not None else None
            content, leaked = self._recalled(memory, sha, own if crossed else None, counted), []
            if content is None:
                hits, text = self.scanner.file(path, data)
                content = KnownContent(tuple(sorted(self.positions[n] for n in hits.names)), tuple(sorted(hits.keys)),
                                       self.count_columns(text, threshold) if counted else None,
                                       hits.token_hashes() if memory is not None else np.zeros(0, dtype=np.uint64))
                leaked = sorted(t for t, owners in hits.cases.items() if _foreign(owners, own)) if crossed else []
                if memory is not None:
                    new[sha] = content
            else:
                entries[sha] = memory.entries[sha]
            found.append(self._findings(relative, own, content, leaked, crossed, identifiers, threshold))
        if memory is not None:
            entries.update(memory.remember(new))
        return found, entries

    def _findings(self, relative: str, own: str | None, content: KnownContent, leaked: list[str], crossed: bool,
                  identifiers: bool, threshold: int | None) -> FileFindings:
        names = {self.names[i] for i in content.names}
        cross = []
        if crossed:
            cross = [f"{relative} reveals {name.what}" for site, name in self.site_names
                     if site != own and name in names]
            if leaked:
                cross.append(f"{relative} holds another site's cases ({leaked[:3]})")
        named = sorted(n.text for n in self.identifiers if n in names) if identifiers else []
        return FileFindings(relative, cross, [f"{relative} has identifier columns {named}"] if named else [],
                            set(content.hex_tokens) if identifiers else set(),
                            [f"{relative} publishes a {column} count from 1 to {threshold}"
                             for column in content.count_columns or ()])


def cross_site_leaks(folder: Path, sites: pd.DataFrame, case_ids, workers: int | None = None) -> list[str]:
    """Problems of kind 1: a package that reveals another site."""
    return Checks(folder, sites=sites, case_ids=case_ids).run(cross_site=True, identifiers=False, threshold=None,
                                                              workers=workers)


def identifier_leaks(folder: Path, registry: Registry, patient_keys, workers: int | None = None) -> list[str]:
    """Problems of kind 2: a direct identifier, or a pseudonym of one, in any published file."""
    return Checks(folder, registry=registry, patient_keys=patient_keys).run(cross_site=False, identifiers=True,
                                                                            threshold=None, workers=workers)


def small_count_leaks(folder: Path, threshold: int, workers: int | None = None) -> list[str]:
    """Problems of kind 3: a count from 1 to ``threshold`` in a site package's table."""
    return Checks(folder).run(cross_site=False, identifiers=False, threshold=threshold, workers=workers)


def privacy_problems_by_kind(folder: Path, registry: Registry, sites: pd.DataFrame, case_ids, patient_keys,
                             workers: int | None = None, memory_dir: Path | None = None,
                             ) -> tuple[list[str], list[str], list[str]]:
    """The problems of kinds 1, 2 and 3, reading and scanning each published file once.

    ``case_ids``: the (site_id, case_id) pairs as a frame, a case file or a ``HashedStrings`` index;
    ``patient_keys``: a set of strings, a ``HashedStrings`` index or a function saying which of a set
    of 64-hex tokens are patient keys; ``memory_dir``: where what the scans found is kept (see
    ``Checks``)."""
    checks = Checks(folder, sites=sites, case_ids=_case_index(case_ids, memory_dir), registry=registry,
                    patient_keys=patient_keys)
    return checks.by_kind(cross_site=True, identifiers=True, threshold=registry.policy.small_cell_threshold,
                          workers=workers, memory_dir=memory_dir)


def privacy_problems(folder: Path, registry: Registry, sites: pd.DataFrame, case_ids, patient_keys,
                     workers: int | None = None) -> list[str]:
    """All three checks, reading each published file once (what the publication asset runs)."""
    return [p for kind in privacy_problems_by_kind(folder, registry, sites, case_ids, patient_keys, workers)
            for p in kind]
