"""What a ConnectedApp pre-authorizes.

``profileName`` and ``permissionSetName`` apply only with ``oauthConfig/isAdminApproved`` true
(Metadata API ConnectedApp doc). ``permissionSetName`` holds the permission set *label*, and
``profileName`` the profile's display name (observed in retrieved files: trailheadapps/ready-to-fly
"Ready to Fly Admin" for Salesforce_Slack_App_Admin). ``ipRelaxation`` ENFORCE means the profile's
login IP ranges apply to the app's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any
from sf_intuser.metadata.permission_set import as_doc
from sf_intuser.metadata.xml import Document, child, children, flag, text


@dataclass(frozen=True)
class ConnectedAppAccess:
    name: str
    label: str
    admin_approved: bool
    profiles: tuple[str, ...]
    permission_set_labels: tuple[str, ...]
    client_credentials_user: str | None
    ip_relaxation: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def preauthorizes_profile(self, profile: str) -> bool:
        return self.admin_approved and profile in self.profiles


def read(data: bytes | Document, name: str) -> ConnectedAppAccess:
    doc = as_doc(data, name)
    root = doc.root
    oauth = child(root, "oauthConfig")
    policy = child(root, "oauthPolicy")
    return ConnectedAppAccess(
        name=name,
        label=text(root, "label") or name,
        admin_approved=bool(oauth is not None and flag(oauth, "isAdminApproved")),
        profiles=tuple(c.text or "" for c in children(root, "profileName")),
        permission_set_labels=tuple(c.text or "" for c in children(root, "permissionSetName")),
        client_credentials_user=text(oauth, "oauthClientCredentialUser") if oauth is not None else None,
        ip_relaxation=text(policy, "ipRelaxation") if policy is not None else None,
    )
