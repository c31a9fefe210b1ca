# The sh probe hermesctl ran before the agent (commit d40ba68), kept only to measure against.
H=${HERMES_HOME:-/opt/data}
echo "now $(echo | /command/s6-tai64n 2>/dev/null | cut -c1-25)"
echo "epoch $(date +%s.%N)"
echo "comm $(cat /proc/1/comm 2>/dev/null)"
[ -e /run/s6/stage2-done ] && echo "booted 1" || echo "booted 0"
for d in /run/service/gateway-*; do
  [ -d "$d" ] || continue
  p=${d#/run/service/gateway-}
  if [ "$p" = default ]; then pd=$H; else pd=$H/profiles/$p; fi
  echo "slot $p"
  s=$(/command/s6-svstat -o up,wantedup,normallyup,pid,exitcode,signal,updownfor "$d" 2>/dev/null) && echo "svstat $s" || echo "svstat -"
  echo "deaths $(/command/s6-svdt -n 10 "$d" 2>/dev/null | tr '\n' '|')"
  echo "state $(base64 -w0 "$pd/gateway_state.json" 2>/dev/null)"
  echo "ops $(head -c 2048 "$H/.hermesctl/operations/$p" 2>/dev/null | tr '\n' '|')"
done
# Gateway processes, supervised or not ([ ] keeps this script's own text from matching).
ps -e -o pid=,ppid=,args= 2>/dev/null | grep -e 'gateway[ ]run' | while read -r pid ppid args; do
  echo "gwproc $pid $ppid $args"
done
echo "end"
