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
# No token from docker/.env and the placeholder still in tb_gateway.json: say so and wait, rather
# than let the gateway retry a refused MQTT connection forever without saying why.
while [ -z "${TB_GW_ACCESS_TOKEN:-}" ] && grep -q '"SET_TB_GW_ACCESS_TOKEN"' "$CONF/tb_gateway.json" 2>/dev/null; do
    echo "tb-gateway: no access token. Create a gateway device in ThingsBoard, put" \
         "TB_GW_ACCESS_TOKEN=<its token> in docker/.env, then: docker compose up -d tb-gateway" >&2
    sleep 60
done
cd /
exec python3 ./thingsboard_gateway/tb_gateway.py
