"""irctest controller for charla: a fresh `charla serve` for every test case, as irctest
runs ngircd and InspIRCd, so figures such as LUSERS's are each case's own.

Use: PYTHONPATH=/path/to/charla/scripts/irctest pytest --controller charla_controller ...
with CHARLA_BIN naming the binary (default: `charla` on PATH). docs/irctest.md has the
whole command.
"""

import functools
import os
import shutil
import subprocess
import time
from typing import Optional, Set, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController


class CharlaController(BaseServerController, DirectoryBasedController):
    software_name = "charla"
    supported_sasl_mechanisms: Set[str] = {"PLAIN"}
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
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        binary = os.environ.get("CHARLA_BIN") or shutil.which("charla") or "charla"
        self.binary = binary
        # charla's accounts are its own (SASL PLAIN, no services): a case that wants them
        # gets a database in its directory, where `registerUser` creates them.
        self.data = str(self.directory / "data") if run_services else None
        env = dict(os.environ)
        # The IRC password goes by environment, not argv: `ps` shows argv.
        if password is not None:
            env["CHARLA_IRC_PASSWORD"] = password
        else:
            env.pop("CHARLA_IRC_PASSWORD", None)
        command = [
            binary,
            "serve",
            "--data",
            self.data or "none",
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
        # irctest's operator, as its ngircd and InspIRCd configurations have it; the server
        # is given the password's argon2 hash only.
        env["CHARLA_OPER"] = f"operuser:{oper_hash(binary, 'operpassword')}"
        self.proc = self.execute(command, env=env)

    def wait_for_services(self) -> None:
        """The accounts are the server's own: up when it is."""

    def registerUser(self, case, username: str, password: Optional[str] = None) -> None:
        """Creates the account as `charla account add` does, in the running server's
        database; a password charla refuses (under 8 characters) skips the case."""
        if self.data is None:
            raise NotImplementedByController("account registration without services")
        # The server may still be making its database as irctest asks.
        for _ in range(50):
            if os.path.exists(os.path.join(self.data, "charla.db")):
                break
            time.sleep(0.1)
        done = subprocess.run(
            [self.binary, "account", "add", username, "--data", self.data],
            input=(password or "") + "\n",
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise NotImplementedByController(
                f"account {username!r} refused: {done.stderr.strip()}"
            )


@functools.cache
def oper_hash(binary: str, password: str) -> str:
    """The hash `charla account hash` prints of `password`, once per run."""
    done = subprocess.run(
        [binary, "account", "hash"],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def get_irctest_controller_class() -> Type[CharlaController]:
    return CharlaController
