"""Recreating a container on another image with the settings it was created with.

The source is the container's own inspect data (what `docker run`/compose asked for), so this
works for compose services and plain `docker run` containers alike. Whatever the container only
inherited from its old image (environment defaults, labels such as io.hermes-agent.version, the
entrypoint, CMD, healthcheck) is left out, so the new image's own values apply.
"""
from dataclasses import dataclass, field

# Config keys a container was created with; the rest of inspect's Config is derived.
CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
               "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
               "Volumes", "WorkingDir", "Entrypoint", "Labels", "StopSignal", "StopTimeout")
# Keys whose value, when equal to the old image's, came from the image and follow it.
INHERITED_WHOLE = ("User", "ExposedPorts", "Cmd", "Healthcheck", "Volumes", "WorkingDir",
                   "Entrypoint", "StopSignal")
BUILTIN_NETWORKS = ("bridge", "host", "none", "default")


@dataclass
class ContainerSpec:
    """Everything needed to create the container again, on any image."""
    name: str
    config: dict
    host_config: dict
    primary_network: str | None
    networks: dict[str, dict] = field(default_factory=dict)  # name -> endpoint settings

    def summary(self) -> dict:
        """What an operator checks in a plan: volumes, networks, ports, restart, healthcheck."""
        hc = self.host_config
        ports = []
        for port, bindings in sorted((hc.get("PortBindings") or {}).items()):
            for b in bindings or []:
                ports.append(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}->{port}")
        volumes = [b.split(":")[0] + "->" + b.split(":")[1] for b in hc.get("Binds") or []]
        volumes += [f"{m.get('Source')}->{m.get('Target')}" for m in hc.get("Mounts") or []]
        return {"volumes": volumes, "networks": list(self.networks) or [hc.get("NetworkMode")],
                "ports": ports, "restart": (hc.get("RestartPolicy") or {}).get("Name") or "no",
                "healthcheck": "image's" if "Healthcheck" not in self.config else "container's"}


def _mounted_destinations(host_config: dict) -> set[str]:
    targets = {b.split(":")[1] for b in host_config.get("Binds") or [] if ":" in b}
    targets |= {m.get("Target") for m in host_config.get("Mounts") or []}
    return targets


def spec_from_inspect(inspect: dict, image_config: dict | None) -> ContainerSpec:
    """The creation settings of a container (`inspect_container`), minus what it inherited from
    its image (`inspect_image(...)["Config"]`, None if the image is gone: then keep all)."""
    cfg = inspect["Config"]
    image_cfg = image_config or {}
    config = {k: cfg[k] for k in CONFIG_KEYS if cfg.get(k) not in (None, "", [], {})}
    if image_config is not None:
        for key in INHERITED_WHOLE:
            if key in config and config[key] == image_cfg.get(key):
                del config[key]
        image_env = set(image_cfg.get("Env") or [])
        config["Env"] = [e for e in cfg.get("Env") or [] if e not in image_env]
        image_labels = image_cfg.get("Labels") or {}
        config["Labels"] = {k: v for k, v in (cfg.get("Labels") or {}).items() if image_labels.get(k) != v}
    # Docker's default hostname is the container's short id: the new container gets its own.
    if config.get("Hostname") == inspect["Id"][:12]:
        del config["Hostname"]
    host_config = dict(inspect["HostConfig"])
    # Volumes the container got without asking by name (the image's VOLUME /opt/data, `-v /x`)
    # are anonymous: name them, or the new container would get fresh, empty ones.
    covered = _mounted_destinations(host_config)
    extra_binds = [f"{m['Name']}:{m['Destination']}{'' if m.get('RW', True) else ':ro'}"
                   for m in inspect.get("Mounts") or []
                   if m.get("Type") == "volume" and m.get("Name") and m["Destination"] not in covered]
    if extra_binds:
        host_config["Binds"] = list(host_config.get("Binds") or []) + extra_binds
    networks = {}
    short_id = inspect["Id"][:12]
    for net, settings in (inspect.get("NetworkSettings", {}).get("Networks") or {}).items():
        endpoint = {}
        if net not in BUILTIN_NETWORKS:
            aliases = [a for a in settings.get("Aliases") or [] if a != short_id]
            if aliases:
                endpoint["Aliases"] = aliases
        for key in ("IPAMConfig", "Links", "DriverOpts"):
            if settings.get(key):
                endpoint[key] = settings[key]
        networks[net] = endpoint
    mode = host_config.get("NetworkMode")
    primary = mode if mode in networks else (next(iter(networks)) if networks else None)
    return ContainerSpec(inspect["Name"].lstrip("/"), config, host_config, primary, networks)


def create(daemon, spec: ContainerSpec, image: str) -> str:
    """Create (not start) the container on `image` (through a backends.daemon.Daemon); returns
    its id. Docker before API 1.44 takes one network at creation: the others are connected
    before the first start."""
    body = {**spec.config, "Image": image, "HostConfig": spec.host_config}
    if spec.primary_network:
        body["NetworkingConfig"] = {"EndpointsConfig": {spec.primary_network: spec.networks[spec.primary_network]}}
    created = daemon.create_from_config(body, spec.name)
    for net, settings in spec.networks.items():
        if net == spec.primary_network or net in BUILTIN_NETWORKS:
            continue
        ipam = settings.get("IPAMConfig") or {}
        links = dict(link.split(":", 1) for link in settings.get("Links") or [] if ":" in link)
        daemon.connect_network(created, net, aliases=settings.get("Aliases"), links=links or None,
                               ipv4_address=ipam.get("IPv4Address"), ipv6_address=ipam.get("IPv6Address"))
    return created
