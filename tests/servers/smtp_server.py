"""An SMTP server for the tests (tests/servers/src/smtp.rs), on aiosmtpd.

Run with the Python of the venv that scripts/test.sh makes (ORCHESTRATOR_SMTP_SERVER):

    smtp_server.py PORT SPOOL_DIR none|starttls|implicit [CERT_PEM KEY_PEM]

It listens on 127.0.0.1:PORT and takes AUTH PLAIN and LOGIN for the user
and password in SMTP_USER and SMTP_PASSWORD; with SMTP_REQUIRE_AUTH=1, MAIL
is refused until AUTH succeeded. TLS modes:

    none      plain SMTP; AUTH allowed without TLS (aiosmtpd's default,
              auth_require_tls=True, would neither offer nor accept it)
    starttls  STARTTLS offered and required before anything but EHLO, NOOP
              and QUIT (require_starttls); AUTH offered only after it
    implicit  TLS from the first byte (SMTPS, the Controller's ssl_context);
              aiosmtpd counts only STARTTLS as TLS, so AUTH is allowed as
              with `none`, inside the TLS connection

Each message accepted is written to SPOOL_DIR as NNNNNN.eml (the message as
received, after dot-unstuffing) and then NNNNNN.json (envelope: mail_from,
rcpt_to, mail_options, rcpt_options, auth_user, tls), the JSON renamed into
place last, so a reader that sees it sees the whole message. SPOOL_DIR/ready
appears once the server listens. SIGTERM or SIGINT stops it, and so does the
end of the process that started it.
"""

import json
import logging
import os
import signal
import ssl
import sys
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Spool:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        stem = os.path.join(self.directory, f"{self.count:06d}")
        with open(stem + ".eml", "wb") as f:
            f.write(envelope.original_content)
        login = getattr(session.auth_data, "login", None) if session.authenticated else None
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_to": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "rcpt_options": envelope.rcpt_options,
            "auth_user": login.decode("utf-8", "replace") if login is not None else None,
            # Session.ssl is set by STARTTLS only; the transport knows of implicit TLS too.
            "tls": server.transport.get_extra_info("ssl_object") is not None,
        }
        with open(stem + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(stem + ".json.tmp", stem + ".json")
        return "250 OK: queued as " + os.path.basename(stem)


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        logging.info("AUTH %s as %r: %s", mechanism, getattr(auth_data, "login", None), "ok" if ok else "refused")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


def main():
    port, spool, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # aiosmtpd warns when AUTH is required without STARTTLS; here that is the point.
    warnings.simplefilter("ignore")
    context = None
    if mode != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
    options = dict(
        hostname="127.0.0.1",
        port=port,
        # Not socket.getfqdn(), which may wait for DNS.
        server_hostname="localhost",
        authenticator=authenticator(os.environ["SMTP_USER"], os.environ["SMTP_PASSWORD"]),
        auth_required=os.environ.get("SMTP_REQUIRE_AUTH") == "1",
        auth_require_tls=mode == "starttls",
    )
    if mode == "starttls":
        options.update(tls_context=context, require_starttls=True)
    elif mode == "implicit":
        options.update(ssl_context=context)
    elif mode != "none":
        sys.exit(f"unknown TLS mode {mode!r}")
    # Only the main thread takes the stop signals (the server's thread inherits the mask).
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    controller = Controller(Spool(spool), **options)
    controller.start()
    open(os.path.join(spool, "ready"), "w").close()
    parent = os.getppid()
    while signal.sigtimedwait(stop, 1.0) is None and os.getppid() == parent:
        pass
    controller.stop()


if __name__ == "__main__":
    main()
