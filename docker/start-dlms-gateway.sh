#!/bin/sh
# Start script of the tb-gateway-dlms image.
# First launch: fill the config/extensions volumes from /default-config like the base image's
# start script, without overwriting files already there. Then exec the gateway so that it is
# PID 1: `docker stop` with stop_signal SIGINT reaches it and it shuts down cleanly (closes the
# connector, disconnects its devices). Under the base script the gateway runs as a child of sh,
# which as PID 1 does not pass signals on.
set -e
CONF=/thingsboard_gateway/config
if [ ! -f "$CONF/.firstlaunch" ]; then
    mkdir -p "$CONF" /thingsboard_gateway/extensions /thingsboard_gateway/logs
    if [ -d /default-config/config ]; then cp -rn /default-config/config/. "$CONF/"; fi
    if [ -d /default-config/extensions ]; then
        cp -rn /default-config/extensions/. /thingsboard_gateway/extensions/
    fi
    echo "# Remove this file to copy missing default config files again" > "$CONF/.firstlaunch"
fi
cd /
exec python3 ./thingsboard_gateway/tb_gateway.py
