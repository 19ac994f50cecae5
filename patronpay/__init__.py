"""patronpay: pay Alma library fines through CashNet. This package holds the command line and
the glue that runs the proxy, the kiosk agent and the sandbox together."""
