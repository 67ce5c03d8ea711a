"""A stand-in lab system (LIS) for the tests: an MLLP server built on
python-hl7 (a third-party HL7 v2 implementation), so what Weft sends is
parsed by a peer that is not Weft.

Usage: lis.py OUT_DIR [ACK_CODE [PORT]]
Prints the port it listens on (127.0.0.1; PORT, else chosen by the system), then for
each message: parses it with python-hl7, writes it to OUT_DIR/NNNN.hl7
(segments ended by CR, as received) and answers python-hl7's ACK for it
(AA unless ACK_CODE says otherwise), MSA-2 being the message's MSH-10.
"""

import asyncio
import pathlib
import sys

import hl7
from hl7.mllp import start_hl7_server

OUT = pathlib.Path(sys.argv[1])
ACK_CODE = sys.argv[2] if len(sys.argv) > 2 else "AA"
PORT = int(sys.argv[3]) if len(sys.argv) > 3 else 0
COUNT = 0


async def handle(reader, writer):
    global COUNT
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            COUNT += 1
            # Parsed by python-hl7: a message it cannot read fails here.
            assert str(message.segment("MSH")[9]), "MSH-9 is empty"
            path = OUT / f"{COUNT:04}.hl7"
            path.with_suffix(".tmp").write_bytes(str(message).encode("utf-8"))
            path.with_suffix(".tmp").rename(path)
            writer.writemessage(message.create_ack(ack_code=ACK_CODE))
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


async def main():
    OUT.mkdir(parents=True, exist_ok=True)
    async with await start_hl7_server(
        handle, host="127.0.0.1", port=PORT, encoding="utf-8"
    ) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()


asyncio.run(main())
