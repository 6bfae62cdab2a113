"""irctest controller for charla: a fresh `charla serve` for every test case, as irctest
runs ngircd and InspIRCd, so figures such as LUSERS's are each case's own.

Use: PYTHONPATH=/path/to/charla/scripts/irctest pytest --controller charla_controller ...
with CHARLA_BIN naming the binary (default: `charla` on PATH). docs/irctest.md has the
whole command.
"""

import os
import shutil
from typing import Optional, Set, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController


class CharlaController(BaseServerController, DirectoryBasedController):
    software_name = "charla"
    supported_sasl_mechanisms: Set[str] = set()
    supports_sts = False

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        if ssl:
            raise NotImplementedByController("TLS")
        if run_services:
            raise NotImplementedByController("services")
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        binary = os.environ.get("CHARLA_BIN") or shutil.which("charla") or "charla"
        env = dict(os.environ)
        # The IRC password and operator go by environment, not argv: `ps` shows argv.
        if password is not None:
            env["CHARLA_IRC_PASSWORD"] = password
        else:
            env.pop("CHARLA_IRC_PASSWORD", None)
        command = [
            binary,
            "serve",
            "--data",
            "none",
            "--listen",
            "127.0.0.1:0",
            "--listen",
            f"irc://{hostname}:{port}",
            "--server-name",
            "My.Little.Server",
            "--flood-rate",
            "0",
            "--max-per-ip",
            "0",
        ]
        oper = os.environ.get("CHARLA_IRCTEST_OPER")
        if oper:
            command += ["--irc-oper", oper]
        self.proc = self.execute(command, env=env)


def get_irctest_controller_class() -> Type[CharlaController]:
    return CharlaController
