"""S3's answers of 1000 entries (listings, bulk deletes) read in one pass, as botocore would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore import handlers, parsers
from botocore.model import OperationModel, Shape, StructureShape

# botocore's stubs describe its public API; this module extends its parser's internals.
_RestXMLParser: Any = parsers.RestXMLParser
_ResponseParserFactory: Any = parsers.ResponseParserFactory
#: botocore's check of an S3 answer of 200 (handlers.BUILTIN_HANDLERS, "before-parse.s3.*").
handle_200_error: Any = vars(handlers)["_handle_200_error"]

#: The answers read by the fast path: botocore's generic walk of a page of 1000 keys costs about
#: 13 ms of CPU here (4 ms this way), and a run is made of little else.
BULK_OUTPUTS = frozenset({"ListObjectsV2Output", "ListObjectVersionsOutput", "DeleteObjectsOutput"})

Read = Callable[[Any], Any]


class _Unusual(Exception):
    """A shape or a document the fast path does not read the way botocore does."""


class BulkAnswerParser(_RestXMLParser):
    """botocore's rest-xml parser, with the bulk answers read by readers compiled once per
    shape: a member found by its tag in one dict lookup, a scalar converted in place. botocore
    walks the shape for every element and builds a dict of each element's children first; the
    result is the same, and anything the readers do not expect (a repeated scalar, a member
    they cannot read) goes to botocore's own walk, so the answer is always botocore's."""

    def __init__(self, readers: dict[str, Read | None], **defaults: Any) -> None:
        super().__init__(**defaults)
        self._readers = readers
        self._root: Any = None

    def parse(self, response: dict[str, Any], shape: Shape | None) -> dict[str, Any]:
        """The answer as botocore parses it; a bulk answer's XML is parsed once, here.

        botocore parses every S3 answer of 200 once before its parser does, to find an error
        S3 sent with a 200, or a body cut short, and turn it into a 500 that is retried
        (`handle_200_error_unless_bulk`). For the bulk answers that check is made on the
        tree the answer is then read from.
        """
        if response["status_code"] == 200 and response["body"] and self._reader(shape):
            try:
                self._root = self._parse_xml_string_to_dom(response["body"])
            except parsers.ResponseParserError:
                self._root = None
            if self._root is None or self._root.tag == "Error":
                response["status_code"] = 500
        try:
            parsed: dict[str, Any] = super().parse(response, shape)
            return parsed
        finally:
            # botocore's parsers are in a reference cycle (one holds its own bound method):
            # a tree left on one would wait for the cycle collector instead of being freed.
            self._root = None

    def _parse_payload(
        self,
        response: dict[str, Any],
        shape: Shape,
        member_shapes: Any,
        final_parsed: dict[str, Any],
    ) -> None:
        read = self._reader(shape)
        if read is None or self._root is None:
            super()._parse_payload(response, shape, member_shapes, final_parsed)
            return
        root = self._root
        try:
            final_parsed.update(read(root))
        except Exception:  # whatever it was, botocore's walk decides
            final_parsed.update(self._parse_shape(shape, root))

    def _reader(self, shape: Shape | None) -> Read | None:
        if shape is None or shape.name not in BULK_OUTPUTS or "payload" in shape.serialization:
            return None
        if shape.name not in self._readers:
            try:
                self._readers[shape.name] = self._compile(shape)
            except _Unusual:
                self._readers[shape.name] = None
        return self._readers[shape.name]

    def _compile(self, shape: Shape) -> Read:
        kind = shape.type_name
        if kind == "structure":
            return self._compile_structure(shape)  # type: ignore[arg-type]
        if kind == "list" and not shape.serialization.get("flattened"):
            item = self._compile(shape.member)  # type: ignore[attr-defined]
            return lambda node: [item(child) for child in node]
        scalar = self._scalar(kind)
        return lambda node: scalar(node.text or "")

    def _scalar(self, kind: str) -> Callable[[str], Any]:
        # As BaseXMLResponseParser's _handle_<type> read an element's text.
        scalars: dict[str, Callable[[str], Any]] = {
            "string": str,
            "character": str,
            "integer": int,
            "long": int,
            "float": float,
            "double": float,
            "boolean": lambda text: text == "true",
            "timestamp": self._timestamp_parser,
            "blob": self._blob_parser,
        }
        if kind not in scalars:
            raise _Unusual(kind)
        return scalars[kind]

    def _compile_structure(self, shape: StructureShape) -> Read:
        if shape.metadata.get("exception") or shape.is_tagged_union or shape.is_document_type:
            raise _Unusual(shape.name)
        # tag -> (member, read one element, flattened list: elements gathered into a list)
        members: dict[str, tuple[str, Read, bool]] = {}
        for name, member in shape.members.items():
            serialization = member.serialization
            if serialization.get("location") in self.KNOWN_LOCATIONS:
                continue  # read from the headers by botocore, before the body
            if serialization.get("xmlAttribute") or serialization.get("eventheader"):
                raise _Unusual(name)
            flattened = member.type_name == "list" and bool(serialization.get("flattened"))
            read = self._compile(member.member if flattened else member)  # type: ignore[attr-defined]
            members[self._member_key_name(member, name)] = (name, read, flattened)

        def read_structure(node: Any) -> dict[str, Any]:
            parsed: dict[str, Any] = {}
            for child in node:
                found = members.get(child.tag.rpartition("}")[2])
                if found is None:
                    continue  # botocore reads only the shape's members
                name, read, flattened = found
                if flattened:
                    parsed.setdefault(name, []).append(read(child))
                elif name in parsed:
                    raise _Unusual(name)  # botocore's walk has its own rules for repeats
                else:
                    parsed[name] = read(child)
            return parsed

        return read_structure


class BulkAnswerParserFactory(_ResponseParserFactory):
    """botocore's parser factory, with `BulkAnswerParser` for rest-xml (S3's protocol). Readers
    are compiled once per factory, that is once per botocore session."""

    def __init__(self) -> None:
        super().__init__()
        self._readers: dict[str, Read | None] = {}

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "rest-xml":
            return BulkAnswerParser(self._readers, **self._defaults)
        return super().create_parser(protocol_name)


def handle_200_error_unless_bulk(
    operation_model: OperationModel, response_dict: dict[str, Any], **kwargs: Any
) -> None:
    """botocore's check of an S3 answer of 200 for an error or a cut body, for every answer
    but the bulk ones, which `BulkAnswerParser.parse` checks on the tree it reads them from.
    Registered in place of botocore's handler."""
    output = operation_model.output_shape
    if output is not None and output.name in BULK_OUTPUTS:
        return
    handle_200_error(operation_model, response_dict, **kwargs)
