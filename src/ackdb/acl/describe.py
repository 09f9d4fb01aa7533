"""How a user is written back: the text of ACL LIST, ACL GETUSER and the ACL file.

Owns: ``describe_user`` / ``describe_selector`` / ``describe_commands`` as Redis 7.0
writes them. Pure functions of a user; never changes one.

Redis 7.0 does not keep the rules as typed: it describes the allowed-command set anew
(ACLDescribeSelectorCommandRules): ``+@all`` or ``-@all`` first (whether future commands
are allowed), then, greedily, the category that best fits what is still different (more
commands in common than different, fewest differences first), then single ``+cmd`` /
``-cmd`` rules, and first-argument rules, until the set is exact. Redis walks its command
dictionary in hash order for the single rules; ackdb walks the command table's order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .selector import CATEGORIES, READ, READ_WRITE, Selector, every_command, in_category

if TYPE_CHECKING:
    from .users import User


def describe_commands(sel: Selector) -> str:
    additive = not sel.all_future
    rules = ["-@all" if additive else "+@all"]
    fake = Selector()
    fake.set_all(not additive)
    # Commands whose bit is still to be explained: the categories are chosen on it.
    todo = set(sel.allowed)
    if not additive:
        todo = {c.name for c in every_command()} - todo  # the denied ones
    applied: set[str] = set()
    commands = every_command()
    while True:
        best, mindiff, maxsame = "", 1 << 62, 0
        for category in CATEGORIES:
            if category in applied:
                continue
            same = diff = 0
            for cmd in commands:
                if in_category(cmd, category):
                    if cmd.name in todo:
                        same += 1
                    else:
                        diff += 1
            if same > diff and (diff < mindiff or (diff == mindiff and same > maxsame)):
                best, mindiff, maxsame = category, diff, same
        if not best:
            break
        applied.add(best)
        rules.append(("+@" if additive else "-@") + best)
        fake.set_category(best, additive)
        # Redis applies the inverse rule to its temporary copy: "explained" commands
        # of the category leave the to-do set whatever their bit was.
        for cmd in commands:
            if in_category(cmd, best):
                todo.discard(cmd.name)
                for sub in cmd.subcommands.values():
                    todo.discard(sub.name)
    for cmd in commands:
        user_bit = cmd.name in sel.allowed
        if user_bit != (cmd.name in fake.allowed):
            rules.append(("+" if user_bit else "-") + cmd.name)
            fake.allow_command(cmd, user_bit)
        if not user_bit:
            for arg in sel.firstargs.get(cmd.name, ()):
                rules.append("+%s|%s" % (cmd.name, arg.decode("utf-8", "surrogateescape")))
    return " ".join(rules)


def _pattern(p: bytes, perm: int) -> str:
    text = p.decode("utf-8", "surrogateescape")
    if perm == READ_WRITE:
        return "~" + text
    return ("%R~" if perm == READ else "%W~") + text


def describe_keys(sel: Selector) -> str:
    if sel.allkeys:
        return "~*"
    return " ".join(_pattern(p, perm) for p, perm in sel.patterns)


def describe_channels(sel: Selector) -> str:
    if sel.allchannels:
        return "&*"
    return " ".join("&" + p.decode("utf-8", "surrogateescape") for p in sel.channels)


def describe_selector(sel: Selector) -> str:
    parts = []
    keys = describe_keys(sel)
    if keys:
        parts.append(keys)
    if sel.allchannels:
        parts.append("&*")
    else:
        parts.append("resetchannels")
        if sel.channels:
            parts.append(describe_channels(sel))
    parts.append(describe_commands(sel))
    return " ".join(parts)


def user_flags(u: User) -> list[str]:
    flags = ["on" if u.enabled else "off"]
    if u.nopass:
        flags.append("nopass")
    if u.sanitize:
        flags.append(u.sanitize)
    return flags


def describe_user(u: User) -> str:
    """The rules after ``user <name>`` in ACL LIST and the ACL file."""
    parts = user_flags(u)
    parts += ["#" + h for h in u.passwords]
    for sel in u.selectors:
        text = describe_selector(sel)
        parts.append(text if sel.root else "(%s)" % text)
    return " ".join(parts)
