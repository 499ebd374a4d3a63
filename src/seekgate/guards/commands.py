"""Dangerous shell commands in text the model wrote: in code blocks, inline code, after `$ `, in a
tool call, or in plain prose ("never run rm -rf /" still contains the command).

Each rule is a regular expression over one line (backslash continuations count as one line) and
must begin at a trigger word, the command's first word (`sudo`, `rm`, `curl`, `>`, `:(){` ...).
That rule gives two things:
  - a cheap prefilter: no trigger in the text, nothing to match;
  - a streaming hold (`command_hold`): the answer is released up to the first trigger of the
    unfinished line that can still turn into a command, so a finding never straddles what was
    released and what was held, and a stream is judged as the whole text would be.

Look-alikes are told apart by the target, not the verb: `rm -rf ./build` and `chmod -R 755
./public` pass, `rm -rf ~` and `chmod -R 777 /etc` do not; `curl ... | jq` passes, `curl ... |
sh` does not.
"""

from __future__ import annotations

import re

from seekgate.guards.types import Finding, Kind, without_overlaps

__all__ = ["COMMAND_TYPES", "command_hold", "find_commands"]

COMMAND_TYPES = (
    "fork_bomb",
    "credential_exfiltration",
    "pipe_to_shell",
    "reverse_shell",
    "history_tampering",
    "log_tampering",
    "disk_wipe",
    "recursive_delete_root",
    "chmod_777_system",
    "kill_all_processes",
)
"""In priority order: where two rules match the same command, the earlier type is reported."""

_MAX_HOLD = 2048

# --- triggers ------------------------------------------------------------------------------

_WORDS = """
sudo doas rm rmdir rd del mv find dd mkfs mke2fs wipefs shred blkdiscard diskutil format
clear-disk format-volume initialize-disk perl python\\d*(?:\\.\\d+)? curl wget fetch bash sh zsh dash
ksh source eval iex iwr irm invoke-expression invoke-webrequest invoke-restmethod new-object
chmod chown chgrp cat tac head tail base64 xxd od gzip bzip2 xz zip tar gpg openssl strings env
printenv set export nc ncat netcat socat telnet scp rsync sftp history unset truncate unlink srm
echo printf true ln journalctl wevtutil clear-eventlog remove-eventlog clear-history kill killall5
histfile histsize histfilesize mkfifo mknod php ruby
""".split()  # noqa: SIM905 -- a word list reads best as words
_TRIGGER = re.compile(
    r"(?<![\w.$/-])(?:(?:/usr(?:/local)?)?/s?bin/)?(?:" + "|".join(_WORDS) + r")(?![\w-])"
    r"|(?<![>&=-])>(?![>=&])"  # a redirection, not ->, =>, >=, >>
    r"|(?<![^\s;&|(`'\"]):(?=[ \t]*(?:\(|>|$))"  # `:(){` and `: > file`
    r"|(?<!\w)[A-Za-z_]\w*[ \t]*\([ \t]*\)[ \t]*(?:\{|$)"  # a shell function: `bomb(){`
    r"|(?<!\S)\.(?=[ \t]+<\()|%0",
    re.IGNORECASE | re.MULTILINE,
)

# --- building blocks -----------------------------------------------------------------------

_S = r"[ \t]+"
_B = r"(?<![\w./$-])"  # a command word starts a token
_END = r"(?=[\s;&|)`'\"]|$)"  # a path ends a token
# `sudo` and its options, and a command named by its path (`/bin/rm`, `/usr/bin/bash`)
_PRE = rf"{_B}(?:(?:sudo|doas)(?:{_S}(?:-[ug]{_S}\S+|-[\w-]+))*{_S})?(?:(?:/usr(?:/local)?)?/s?bin/)?"
_OPTS = rf"(?:{_S}-[\w-]+)*"
_RECURSIVE = r"(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)(?=\s)"
_HOME = r"(?:~|\$HOME|\$\{HOME\})"
_SYSTOP = r"(?:bin|boot|dev|etc|home|lib|lib32|lib64|opt|proc|root|sbin|srv|sys|usr|var|System|Library|Users|Applications)"
# `/`, `~`, a top-level system directory or someone's whole home, optionally `/*`
_ROOTISH = (
    rf"""["']?(?:/\*?|{_HOME}/?\*?|/{_SYSTOP}/?\*?|/usr/(?:bin|sbin|lib|local|share)/?|/(?:home|Users)/[\w.-]+/?)"""
    rf"""["']?{_END}"""
)
_DISK = (
    r"/dev/(?:sd[a-z]+\d*|hd[a-z]\d*|vd[a-z]\d*|xvd[a-z]\d*|nvme\d+n\d+(?:p\d+)?|mmcblk\d+(?:p\d+)?"
    r"|r?disk\d+(?:s\d+)?|md\d+|dm-\d+|mapper/[\w-]+|nbd\d+|root)(?![\w/])"
)
_SEG = r"(?:[^\n;&|]|&(?![&\s]))*"  # the rest of one pipeline stage (a URL's & is not a separator)
_FETCH = r"(?:curl|wget|fetch)\b"
# Truncating redirections: `> f`, `: > f`, `echo > f`, `cat /dev/null > f`, `truncate -s 0 f`.
_EMPTY_INTO = (
    rf"(?:(?:(?:echo|printf)(?:{_S}(?:-n|-e|\"\"|''))*[ \t]*|cat{_S}/dev/null[ \t]*|(?::|true)[ \t]*)?"
    rf"(?<![>&=-])>(?![>=&])[ \t]*|{_PRE}truncate(?:{_S}(?:-s{_S}?0|--size[= ]0|-[\w-]+))*{_S})"
)
_HIST = (
    r"""["']?(?:(?:~|\$HOME|\$\{HOME\}|/root|/home/[\w.-]+)/)?\.(?:bash|zsh|sh|ksh|python|mysql|psql|sqlite|node_repl|lesshst)_history["']?"""
    r"""|["']?\$\{?HISTFILE\}?["']?|~/\.local/share/fish/fish_history"""
)
_LOG = (
    r"""["']?(?:/private)?/var/log(?:/(?:[\w.-]+/)*(?:\*[\w.]*|auth\.log|syslog|messages|secure|wtmp|btmp|lastlog|kern\.log|audit\.log)"""
    rf"""|/audit|/journal)?/?["']?{_END}"""
)
_SENSITIVE = (
    # private keys (not .pub, known_hosts, authorized_keys, config) and cloud or tool credentials
    r"(?:(?:~|\$HOME|\$\{HOME\}|/root|/home/[\w.-]+|/Users/[\w.-]+)/\."
    r"(?!ssh/(?:[\w.*-]*\.pub\b|known_hosts|authorized_keys|config\b))"
    r"(?:ssh(?:/[\w.*-]*)?|aws(?:/[\w.-]*)?|netrc|git-credentials|docker/config\.json|kube/config|pgpass|npmrc|pypirc"
    r"|gnupg[\w./-]*|config/gcloud[\w./-]*|azure[\w./-]*)"
    r"|/etc/(?:shadow|gshadow|passwd|sudoers|master\.passwd)"
    r"|(?<![\w.-])(?:[\w.-]*/)*\.env(?!\.(?:example|sample|template|dist)\b)(?:\.\w+)?"
    r"|(?<![\w-])id_(?:rsa|dsa|ecdsa|ed25519)(?![\w.-]))(?![\w-])"
)
_SINK = rf"(?:sudo{_S})?(?:curl|wget|nc|ncat|netcat|socat|telnet|ftp|sftp|ssh|mail|sendmail|openssl{_S}s_client)\b"
_NET = rf"(?:nc|ncat|netcat|telnet|openssl{_S}s_client)\b"  # a raw connection a shell can talk over
_SHELL = r"(?:(?:/usr)?/bin/)?(?:ba|z|da|k)?sh(?![\w.-])"
_READ = r"(?:cat|tac|head|tail|base64|xxd|od|gzip|bzip2|xz|zip|tar|gpg|openssl|strings)"

# --- the rules, one regex per type ---------------------------------------------------------

_RULE_SOURCES: dict[str, list[str]] = {
    "fork_bomb": [
        r"(?<![^\s;&|(`'\"]):[ \t]*\([ \t]*\)[ \t]*\{[ \t]*:[ \t]*\|[ \t]*:[ \t]*&[ \t]*;?[ \t]*\}[ \t]*;[ \t]*:",
        r"(?<!\w)(?P<fb>[A-Za-z_]\w*)[ \t]*\([ \t]*\)[ \t]*\{[ \t]*(?P=fb)[ \t]*\|[ \t]*(?P=fb)[ \t]*&[ \t]*;?[ \t]*\}[ \t]*;[ \t]*(?P=fb)\b",
        r"%0[ \t]*\|[ \t]*%0",
        rf"{_B}perl{_S}-e{_S}[\"']?fork{_S}while{_S}fork",
        rf"{_B}python[\d.]*{_S}-c{_S}[\"'][^\"'\n]*while[^\"'\n]*os\.fork\(\)",
    ],
    "credential_exfiltration": [
        # a secret (or the whole environment) piped or redirected to the network
        (
            rf"{_PRE}(?:{_READ}(?:{_S}[^\s|;&]+)*?{_S}[\"']?{_SENSITIVE}[\"']?{_SEG}|(?:env|printenv|set|export{_S}-p)(?:{_S}-\w+)*[ \t]*)"
            rf"(?:(?:\|(?!\|){_SEG})*?\|[ \t]*{_SINK}|>&?[ \t]*/dev/(?:tcp|udp)/)"
        ),
        # a secret as an upload: curl -d @~/.aws/credentials, -F f=@..., -T ..., $(cat ...)
        (
            rf"{_PRE}(?:curl|wget)\b(?=[^\n;|]*?(?:[@<][ \t]*[\"']?|--(?:post|body)-file[= \t]+[\"']?|-T[ \t]*[\"']?"
            rf"|--upload-file[= \t]+[\"']?|\$\([ \t]*(?:{_READ})\b[^)\n]*?){_SENSITIVE}|[^\n;|]*\$\([ \t]*(?:env|printenv)[ \t]*\))"
        ),
        rf"{_PRE}(?:nc|ncat|netcat|socat|telnet)\b[^\n;|]*<[ \t]*{_SENSITIVE}",
        rf"{_PRE}(?:scp|rsync|sftp)(?:{_S}\S+)*?{_S}[\"']?{_SENSITIVE}[\"']?(?:{_S}\S+)*?{_S}(?:[\w.-]+@)?[\w.-]+:(?!//)",
    ],
    "pipe_to_shell": [
        (
            rf"{_PRE}{_FETCH}{_SEG}(?:\|(?!\|){_SEG})*?\|[ \t]*(?:sudo(?:{_S}-[\w-]+)*{_S})?(?:env(?:{_S}\w+=\S*)*{_S})?(?:(?:/usr)?/bin/)?"
            rf"(?:(?:ba|z|da|k|fi)?sh(?![\w.-])|(?:python[\d.]*|perl|ruby|node|php)(?=[ \t]*(?:-[ \t]*)?(?:$|[;&|)`'\"])))"
        ),
        rf"{_PRE}(?:(?:ba|z|da|k)?sh|source|\.|python[\d.]*|perl|ruby)(?:{_S}-\S+)*{_S}<\([ \t]*(?:sudo{_S})?{_FETCH}",
        rf"{_PRE}(?:(?:ba|z|da|k)?sh|python[\d.]*|perl|ruby|node){_S}-c{_S}[\"']?(?:\$\(|`)[ \t]*{_FETCH}",
        rf"{_PRE}eval{_S}[\"']?(?:\$\(|`)[ \t]*{_FETCH}",
        (
            r"(?i:(?<![\w-])(?:iex|invoke-expression)[ \t]*(?:\$?\([ \t]*){1,2}"
            r"(?:iwr|irm|invoke-webrequest|invoke-restmethod|curl|wget|new-object[ \t]+(?:system\.)?net\.webclient)\b)"
        ),
        r"(?i:(?<![\w-])(?:iwr|irm|invoke-webrequest|invoke-restmethod|curl|wget)\b[^\n;|]*\|[ \t]*(?:iex|invoke-expression)\b)",
        r"(?i:(?<![\w-])new-object[ \t]+(?:system\.)?net\.webclient\)?\.downloadstring\([^)\n]*\)\)?[ \t]*\|[ \t]*(?:iex|invoke-expression)\b)",
    ],
    "reverse_shell": [
        rf"{_PRE}(?:ba|z|k)?sh{_S}-i{_S}?(?:[0-2]?>&?|&>)[ \t]*/dev/(?:tcp|udp)/",
        rf"{_PRE}(?:nc|ncat|netcat)\b[^\n;|]*{_S}-[ec]{_S}[\"']?(?:/usr)?(?:/bin/)?(?:ba|z|da)?sh\b",
        rf"{_PRE}socat\b[^\n;|]*\bexec:[\"']?(?:/usr)?(?:/bin/)?(?:ba|z)?sh\b",
        # a named pipe carrying a shell's input and output over the network: mkfifo f; sh -i < f | nc host port > f
        rf"{_PRE}(?:mkfifo|mknod)\b[^\n]*?{_SHELL}[^\n|]*\|[ \t]*{_NET}",
        # an interactive shell piped to a connection, or a connection piped into a shell
        rf"{_PRE}(?:ba|z|da|k)?sh{_S}-i\b[^\n;|]*\|[ \t]*{_NET}",
        rf"{_PRE}{_NET}[^\n;|]*\|[ \t]*(?:sudo{_S})?{_SHELL}",
        # one-liners that connect a socket and hand it a shell, through the end of the program's quote
        (
            rf"{_PRE}python[\d.]*{_S}-c{_S}(?P<q1>[\"'])[^\n]*?\bsocket\b[^\n]*?(?:\.connect|create_connection)\("
            rf"[^\n]*?(?:\bdup2\(|\bpty\.spawn\(|\bsubprocess\.|/bin/\w*sh)[^\n]*?(?P=q1)"
        ),
        (
            rf"{_PRE}perl(?:{_S}-\S+)*?{_S}-e[ \t]*(?P<q2>[\"'])[^\n]*?(?:\bsocket\(|IO::Socket)"
            rf"[^\n]*?(?:\bexec\b|\bsystem\b|/bin/\w*sh)[^\n]*?(?P=q2)"
        ),
        (
            rf"{_PRE}php(?:{_S}-\S+)*?{_S}-r[ \t]*(?P<q3>[\"'])[^\n]*?\bfsockopen\("
            rf"[^\n]*?(?:\b(?:shell_)?exec\(|\bsystem\(|\bpassthru\(|\bpopen\(|\bproc_open\(|/bin/\w*sh)[^\n]*?(?P=q3)"
        ),
        (
            rf"{_PRE}ruby(?:{_S}-\S+)*?{_S}-e[ \t]*(?P<q4>[\"'])[^\n]*?\bTCPSocket\b"
            rf"[^\n]*?(?:\bexec\b|\bspawn\b|\bsystem\b|IO\.popen|/bin/\w*sh)[^\n]*?(?P=q4)"
        ),
    ],
    "history_tampering": [
        rf"{_PRE}history{_S}(?:-[a-zA-Z]*c[a-zA-Z]*|-w{_S}/dev/null){_END}",
        rf"{_B}unset(?:{_S}-v)?(?:{_S}[A-Z_]\w*)*?{_S}HIST(?:FILE|SIZE|FILESIZE)\b",
        rf"{_B}(?:export{_S})?HIST(?:FILE|SIZE|FILESIZE)=(?:0\b|/dev/null|\"\"|''|(?=[\s;&]|$))",
        rf"{_B}set{_S}\+o{_S}history\b",
        rf"{_PRE}(?:rm|shred|unlink|srm)(?:{_S}-[\w-]+)*{_S}(?:{_HIST}){_END}",
        rf"(?:{_EMPTY_INTO})(?:{_HIST}){_END}",
        rf"{_PRE}ln{_S}-[a-zA-Z]*s[a-zA-Z]*{_S}/dev/null{_S}(?:{_HIST}){_END}",
        r"(?i:(?<![\w-])clear-history(?=[ \t]*(?:$|[;&|`)]|-\w)))",
    ],
    "log_tampering": [
        rf"{_PRE}(?:rm|shred|unlink|srm)(?:{_S}-[\w-]+)*{_S}{_LOG}",
        rf"(?:{_EMPTY_INTO}){_LOG}",
        rf"{_PRE}find{_S}{_LOG}(?![^\n;&|]*-i?(?:name|path|regex)\b)[^\n;&|]*?{_S}(?:-delete|-exec{_S}(?:rm|truncate|shred)\b)",
        rf"{_PRE}journalctl\b[^\n;&|]*--vacuum-(?:size=0*1?[KMkm]?|time=0*1?s?|files=0*1?)(?![\w.])",
        rf"(?i:{_B}(?:wevtutil(?:\.exe)?{_S}(?:cl|clear-log)\b|(?:clear|remove)-eventlog{_S}-?\w))",
    ],
    "disk_wipe": [
        rf"{_PRE}dd(?=[^\n;&|]*{_S}if=/dev/(?:zero|u?random)\b)(?=[^\n;&|]*{_S}of={_DISK})",
        rf"{_PRE}(?:mkfs(?:\.\w+)?|mke2fs|blkdiscard)(?=[^\n;&|]*{_S}{_DISK})",
        rf"{_PRE}wipefs(?=[^\n;&|]*{_S}(?:-\w*a\w*|--all)\b)",
        rf"{_PRE}shred(?=[^\n;&|]*{_S}{_DISK})",
        rf"(?:cat{_S}/dev/(?:zero|u?random)[ \t]*)?(?<![>&=-])>(?![>=&])[ \t]*{_DISK}",
        rf"{_PRE}diskutil{_S}(?i:erasedisk|erasevolume|zerodisk|randomdisk|secureerase|reformat|partitiondisk)\b",
        rf"{_B}(?i:format){_S}[a-zA-Z]:(?=[\s/]|$)",
        rf"(?i:(?<![\w-])(?:clear-disk|format-volume|initialize-disk){_S}-\w)",
    ],
    "recursive_delete_root": [
        rf"{_PRE}rm(?:{_S}-[\w-]+)*?{_S}{_RECURSIVE}{_OPTS}{_S}{_ROOTISH}",
        (
            rf"{_PRE}find{_S}{_ROOTISH}(?![^\n;&|]*-i?(?:name|path|regex)\b|[^\n;&|]*-(?:newer|[am](?:time|min)|size|user|empty)\b)"
            rf"[^\n;&|]*?{_S}(?:-delete|-exec{_S}(?:sudo{_S})?rm)\b"
        ),
        rf"{_PRE}mv{_OPTS}{_S}{_ROOTISH}{_S}/dev/null\b",
        rf"(?i:(?<![\w-])(?:rd|rmdir)(?:[ \t]+/[sq])+[ \t]+[a-z]:\\(?:windows(?:\\system32)?)?\\?{_END})",
        rf"(?i:(?<![\w-])del(?:[ \t]+/[fsqa])+[ \t]+[a-z]:\\\*?{_END})",
    ],
    "chmod_777_system": [
        # world-writable (others' write bit) on a system tree or the home directory
        (
            rf"{_PRE}chmod{_OPTS}{_S}(?:[0-7]?[0-7][0-7][2367]|[ugo]*[ao][ugo]*[+=][rwxXst]*w[rwxXst]*){_OPTS}{_S}"
            rf"""["']?(?:/\*?|{_HOME}/?\*?|/(?!dev/)(?:bin|boot|dev|etc|lib|lib32|lib64|sbin|sys|usr|var|root|home|opt|System|Library)(?:/[^\s;&|`'"]*)?)["']?{_END}"""
        ),
        # any recursive change of mode or owner of / or a top-level system directory
        (
            rf"{_PRE}ch(?:mod|own|grp)(?=[^\n;&|]*{_S}{_RECURSIVE})(?:{_S}(?:-[\w-]+|[^\s;&|`/~\"'-]\S*))*?{_S}"
            rf"""["']?(?:/\*?|/(?:bin|boot|etc|lib|lib64|sbin|usr|var)/?)["']?{_END}"""
        ),
    ],
    "kill_all_processes": [
        # pid -1 is every process the caller may signal; a signal or `--` must come first (`kill -1 42` is a HUP to 42)
        rf"{_PRE}kill(?:(?:{_S}-s{_S}\w+|{_S}-\w+)(?:{_S}--)?|{_S}--){_S}-1(?![\w.])",
        rf"{_PRE}killall5(?:{_S}-\w+)*(?=[ \t]*(?:$|[;&|)`'\"]))",  # SysV: signals every process but its own session
    ],
}


def _compile(sources: list[str]) -> re.Pattern[str]:
    """One regex for a type's rules. Those that start with `_PRE` share one copy of it: the
    engine tries a pattern at every position of a line, and the lookbehind and optional `sudo`
    and path that each rule repeated cost more than the command words after them."""
    shared = [s.removeprefix(_PRE) for s in sources if s.startswith(_PRE)]
    own = [s for s in sources if not s.startswith(_PRE)]
    parts = [f"{_PRE}(?:{'|'.join(f'(?:{s})' for s in shared)})"] if shared else []
    return re.compile("|".join(parts + [f"(?:{s})" for s in own]), re.MULTILINE)


_RULES = {t: _compile(_RULE_SOURCES[t]) for t in COMMAND_TYPES}

# Which rules a line needs, by a word every match of them contains. Plain substring search of
# the lowercased text is several times faster than any regex here, and code is full of `head`,
# `set`, `format` that only the streaming hold needs to treat as possible command words.
_DELETE = ("recursive_delete_root", "history_tampering", "log_tampering")
_WIPE = ("history_tampering", "log_tampering", "disk_wipe")
_FETCH_TYPES = ("pipe_to_shell", "credential_exfiltration")
_NEEDLES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("rm", "rmdir", "mv", "find", "rd", "del"), _DELETE),
    **dict.fromkeys(("shred", "unlink", "srm", "truncate"), _WIPE),
    **dict.fromkeys(
        ("/dev/", "dd", "mkfs", "mke2fs", "wipefs", "blkdiscard", "diskutil", "format")
        + ("clear-disk", "format-volume", "initialize-disk"),
        ("disk_wipe",),
    ),
    **dict.fromkeys((":(", "(){", "() {", "%0|", "fork"), ("fork_bomb",)),
    **dict.fromkeys(
        ("curl", "wget", "fetch", "iex", "iwr", "irm", "new-object")
        + ("invoke-expression", "invoke-webrequest", "invoke-restmethod"),
        _FETCH_TYPES,
    ),
    **dict.fromkeys(
        ("nc", "ncat", "netcat", "socat", "telnet", "ftp", "sftp", "ssh", "mail", "sendmail", "s_client", "scp", "rsync")
        + ("/dev/tcp/", "/dev/udp/"),
        ("credential_exfiltration", "reverse_shell"),
    ),
    **dict.fromkeys(("socket", "fsockopen", "mkfifo", "mknod"), ("reverse_shell",)),
    **dict.fromkeys(("chmod", "chown", "chgrp"), ("chmod_777_system",)),
    "hist": ("history_tampering",),
    **dict.fromkeys(("/var/log", "journalctl", "wevtutil", "clear-eventlog", "remove-eventlog"), ("log_tampering",)),
    **dict.fromkeys(("kill", "killall5"), ("kill_all_processes",)),
}
# Needles that may sit inside a longer word: `HISTFILE`, `TCPSocket`.
_WHOLE_WORD = frozenset(n for n in _NEEDLES if n[0].isalpha() and n not in ("hist", "socket"))
_PRIORITY = {t: i for i, t in enumerate(COMMAND_TYPES)}
_TAIL_PROSE = re.compile(r"(?<!\S)[A-Za-z][a-z]*[,;]?[ \t]+[a-z]+(?![\w.@:/=-])")
_REST = re.compile(r"(?:\\;|[^\n;&|`#]|&(?!&)|\|(?!\|)|(?<=\S)#)*")  # find's `\;` is not an end


def find_commands(text: str) -> list[Finding]:
    """Dangerous commands, each spanning from its first word to the end of the command (the
    next `;`, `&&`, `||`, comment, closing backtick or quote, prose, or line end); sorted, no
    overlaps."""
    low = text.lower()
    needles = [n for n in _NEEDLES if n in low]
    if not needles:
        return []
    # A continued line is one command; spaces keep the offsets.
    work = text.replace("\\\r\n", "   ").replace("\\\n", "  ") if "\\\n" in text or "\\\r\n" in text else text
    found: list[Finding] = []
    for line_start, types in _lines_to_check(low, needles).items():
        line_end = work.find("\n", line_start)
        line_end = len(work) if line_end < 0 else line_end
        for type_ in types:
            for r in _RULES[type_].finditer(work, line_start, line_end):
                found.append(Finding(r.start(), _command_end(work, r, line_end), Kind.COMMAND, type_))
    return without_overlaps((_PRIORITY[f.type], f) for f in found)


def _lines_to_check(low: str, needles: list[str]) -> dict[int, set[str]]:
    """Line start -> the rule types its needles call for (a word needle must be a whole word)."""
    lines: dict[int, set[str]] = {}
    size = len(low)
    for needle in needles:
        whole = needle in _WHOLE_WORD
        at = low.find(needle)
        while at >= 0:
            end = at + len(needle)
            if not whole or ((at == 0 or not _is_word(low[at - 1])) and (end == size or not _is_word(low[end]))):
                # A backslash continuation is not a line break (find_commands blanks them).
                line_start = _line_start(low, at)
                lines.setdefault(line_start, set()).update(_NEEDLES[needle])
            at = low.find(needle, end)
    return lines


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _command_end(text: str, m: re.Match[str], line_end: int) -> int:
    end = _REST.match(text, m.end(), line_end).end()  # type: ignore[union-attr]  # matches empty
    prose = _TAIL_PROSE.search(text, m.end(), end)  # "rm -rf / on a server": the command is `rm -rf /`
    end = prose.start() if prose else end
    quote = text[m.start() - 1] if m.start() else ""
    if quote in ("'", '"'):  # os.system("rm -rf /") ends at its closing quote
        closing = text.find(quote, m.start(), end)
        end = closing if closing >= 0 else end
    while end > m.start() + 1 and text[end - 1].isspace():
        end -= 1
    return end


# --- streaming -----------------------------------------------------------------------------

# Two plain words in a row after a trigger ("find the file", "| sh on a server"): prose. The
# command ended by then, so it and the triggers inside it can be released and judged whole.
_PROSE_PAIR = re.compile(r"(?<!\S)[A-Za-z][a-z]*[,;]?[ \t]+[a-z]{2,}[,.;:!?]?[ \t]")
_WORD_DONE = re.compile(r"[,;!?)\]}'\"]|[.:](?:\s|$)")  # "rm," "history." : not a command word
_REDIRECT_DONE = re.compile(r"[ \t]*[^\s/~$\"'&.]")  # `a > b`: not into a path


def command_hold(tail: str) -> int | None:
    """Where to start holding back the unreleased `tail` of a stream, or None to release it all.

    Only the unfinished last line matters (a line ending in a newline is complete). Held: from
    its first trigger that could still become a dangerous command, and the last partial word
    (it may grow into a trigger, and a trigger must be seen at a real word start). Past
    _MAX_HOLD held characters the line is released and judged as it is.
    """
    start = _line_start(tail)
    if start == len(tail):
        return None
    hold: int | None = None
    decided = start  # triggers before this are part of a command already followed by prose
    for m in _TRIGGER.finditer(tail, start):
        if m.start() < decided:
            continue
        done = _decided(tail, m)
        if done is None:
            hold = m.start()
            break
        decided = max(decided, done)
    if not tail[-1].isspace():
        word = max(tail.rfind(" ", start), tail.rfind("\t", start), start - 1) + 1
        hold = word if hold is None else min(hold, word)
    if hold is None or len(tail) - hold > _MAX_HOLD:
        return None
    return hold


def _line_start(text: str, at: int | None = None) -> int:
    """The start of the line holding `at` (default: the last line): after the newline before it
    that is not a backslash continuation."""
    at = len(text) if at is None else at
    while True:
        nl = text.rfind("\n", 0, at)
        if nl < 0:
            return 0
        before = nl - 1 if nl and text[nl - 1] == "\r" else nl
        if before == 0 or text[before - 1] != "\\":
            return nl + 1
        at = nl


def _decided(text: str, m: re.Match[str]) -> int | None:
    """None while the trigger `m` could still begin a dangerous command; else where its
    command ends at the latest (prose follows, or the word was not a command at all)."""
    word = m.group()
    if word == ">":
        return m.end() if _REDIRECT_DONE.match(text, m.end()) else None
    if word[-1].isalnum() and _WORD_DONE.match(text, m.end()):
        return m.end()
    # Whatever the command was, it is complete: the chunk released with it will show it whole.
    prose = _PROSE_PAIR.search(text, m.end())
    return prose.end() if prose else None
