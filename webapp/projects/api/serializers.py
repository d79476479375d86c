from __future__ import annotations

from rest_framework import serializers

from webapp.projects.models import Membership, Project, Role, Task


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    classes = serializers.ListField(child=serializers.CharField(), required=False)
    channels = serializers.ListField(child=serializers.CharField(), required=False)
    task = serializers.ChoiceField(choices=Task.choices, default=Task.BINARY)
    slug = serializers.SlugField(required=False)

    class Meta:
        model = Project
        fields = ["slug", "name", "description", "task", "classes", "channels", "role", "created_at"]
        read_only_fields = ["created_at"]

    def get_role(self, project: Project) -> str | None:
        role = getattr(project, "user_role", None)
        if role is None:
            role = project.role_of(self.context["request"].user)
        return role


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    user = serializers.CharField(write_only=True, help_text="username or e-mail")
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["id", "username", "user", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
