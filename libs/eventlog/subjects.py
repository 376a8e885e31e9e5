"""NATS subject wildcard matching (``*`` one token, ``>`` the rest)."""


def subject_matches(pattern: str, subject: str) -> bool:
    p = pattern.split(".")
    s = subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)
