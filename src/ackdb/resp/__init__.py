"""All RESP plumbing, one home for each piece.

Sans-IO (bytes in, values or bytes out; no sockets, clocks or asyncio):
    reader     RequestReader: client requests (multibulk and inline), Redis's limits/errors
    request    encode_command / pack: a request as a RESP array of bulk strings
    encoder    reply shapes for RESP2 and RESP3
    replies    ReplyReader / ReplyError: replies parsed by hiredis, RESP2 and RESP3
    ints       parse_ll: Redis string2ll (headers, arguments, config values)
    argsplit   split_args: Redis sdssplitargs (inline commands, config lines)
    hello      HELLO's option parser and reply builder
    frontend   FrontEnd: one connection's ordered pipeline of requests and replies
    addr       parse_addr: host:port

Shells (the only modules here that do IO):
    aio        FrontEndProtocol: the asyncio.Protocol around a FrontEnd
    client     Client (asyncio) and BlockingClient
"""
