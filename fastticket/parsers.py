"""Request body parsers."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# No FastTicket request body nests at all (each is one flat object): 32 levels leave room for any
# client's habits while keeping a document far from the interpreter's recursion limit.
MAX_JSON_DEPTH = 32
TOO_DEEP = f"JSON parse error - the document is nested more than {MAX_JSON_DEPTH} levels deep."


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing a document nested deeper than MAX_JSON_DEPTH with a 400.

    Python's json decoder recurses once per level, so 2 KB of brackets nested 1,000 deep raised
    RecursionError: a 500 and a traceback in the log for each such request. A document that parses
    but nests past the limit is refused too, before any serializer or error renderer walks it.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if _nested_deeper_than(data, MAX_JSON_DEPTH):
            raise ParseError(TOO_DEEP)
        return data


def _nested_deeper_than(document: object, limit: int) -> bool:
    """Tell whether arrays and objects nest more than `limit` levels (walked without recursion)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
