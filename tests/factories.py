"""factory_boy factories for the rows most tests need."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from webapp.projects import services
from webapp.projects.models import Membership, Project

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ProjectFactory(factory.Factory):
    """Projects are made through the service so the owner membership exists."""

    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    owner = factory.SubFactory(UserFactory)
    task = "binary"
    classes = None

    @classmethod
    def _create(cls, model_class, name, owner, task, classes, **kwargs):
        return services.create_project(owner, name, task=task, classes=classes, **kwargs)

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise NotImplementedError("build projects with ProjectFactory() (created)")


def add_member(project: Project, user, role: str) -> Membership:
    return services.set_member(project, user.username, role)
