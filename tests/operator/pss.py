"""The `restricted` Pod Security Standard (kubernetes.io/docs/concepts/security/pod-security-standards/)
as checks on a Pod spec: every rule of the baseline and restricted profiles that a Pod spec can break."""

from __future__ import annotations

from typing import Any

_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What keeps ``pod`` (a PodSpec) from passing the restricted profile; empty when it passes."""
    found: list[str] = []
    pod_sc = pod.get("securityContext") or {}
    containers = [*(pod.get("initContainers") or ()), *(pod.get("containers") or ())]
    # --- baseline
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            found.append(f"{key} is set")
    for sysctl in pod_sc.get("sysctls") or ():
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            found.append(f"unsafe sysctl {sysctl.get('name')}")
    # --- restricted: volumes
    for volume in pod.get("volumes") or ():
        kinds = set(volume) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            found.append(f"volume {volume.get('name')} of type {sorted(kinds)}")
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        found.append(f"pod seccompProfile {pod_seccomp}")
    if pod_sc.get("runAsUser") == 0:
        found.append("pod runAsUser 0")
    if "windowsOptions" in pod_sc and (pod_sc["windowsOptions"] or {}).get("hostProcess"):
        found.append("pod hostProcess")
    for container in containers:
        name = container.get("name")
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            found.append(f"{name}: privileged")
        for port in container.get("ports") or ():
            if port.get("hostPort"):
                found.append(f"{name}: hostPort {port['hostPort']}")
        if sc.get("procMount") not in (None, "Default"):
            found.append(f"{name}: procMount {sc['procMount']}")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("runAsNonRoot") is False or (sc.get("runAsNonRoot") is not True and not pod_non_root):
            found.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            found.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile is {seccomp or 'unset'}, not RuntimeDefault/Localhost")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or ()):
            found.append(f"{name}: capabilities do not drop ALL")
        added = set(capabilities.get("add") or ()) - {"NET_BIND_SERVICE"}
        if added:
            found.append(f"{name}: capabilities add {sorted(added)}")
    return found
