"""Collections over REST: create from a project selection, snapshot, share, use for training."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError as APIValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.collections import services
from webapp.collections.access import collection_for
from webapp.collections.models import Collection, CollectionVersion, TrainingCollection
from webapp.datasets.gallery import ImageFilter, project_images
from webapp.projects.access import project_for
from webapp.projects.models import Role


class VersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = CollectionVersion
        fields = ["number", "note", "item_count", "label_counts", "created_by", "created_at"]
        read_only_fields = fields


class CollectionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    shared_with = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    versions = VersionSerializer(many=True, read_only=True)
    source_project = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Collection
        fields = [
            "id",
            "name",
            "description",
            "owner",
            "public",
            "shared_with",
            "task",
            "classes",
            "channels",
            "source_project",
            "versions",
            "created_at",
        ]
        read_only_fields = fields


class SelectionSerializer(serializers.Serializer):
    project = serializers.SlugField(help_text="the project the images come from")
    datasets = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        help_text="only these datasets (default: all)",
    )
    images = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        help_text="only these images",
    )
    filters = serializers.DictField(required=False, help_text="gallery filters, as in the images API")


class CreateSerializer(SelectionSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)


class SnapshotSerializer(SelectionSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=300)


class ShareSerializer(serializers.Serializer):
    users = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    public = serializers.BooleanField(required=False, allow_null=True, default=None)


def selection(request, d: dict):
    project = project_for(request.user, d["project"])
    qs = project_images(project)
    if d.get("datasets"):
        qs = qs.filter(dataset_id__in=d["datasets"])
    if d.get("images"):
        qs = qs.filter(pk__in=d["images"])
    if d.get("filters"):
        f = ImageFilter(data=d["filters"], queryset=qs, request=request)
        if not f.is_valid():
            raise APIValidationError({"filters": f.errors})
        qs = f.qs
    return project, qs


def as_api_error(exc: ValidationError) -> APIValidationError:
    return APIValidationError({"detail": " ".join(exc.messages)})


class Collections(generics.ListCreateAPIView):
    """Collections you can see: `?scope=mine`, `shared` (shared with you) or `public`."""

    serializer_class = CollectionSerializer
    queryset = Collection.objects.none()
    pagination_class = None

    def get_queryset(self):
        user = self.request.user
        qs = (
            Collection.objects.visible_to(user)
            .select_related("owner", "source_project")
            .prefetch_related("shared_with", "versions")
        )
        scope = self.request.query_params.get("scope")
        if scope == "mine":
            qs = qs.filter(owner=user)
        elif scope == "shared":
            qs = qs.filter(shared_with=user).exclude(owner=user)
        elif scope == "public":
            qs = qs.filter(public=True)
        return qs

    @extend_schema(parameters=[OpenApiParameter("scope", str, enum=["mine", "shared", "public"])])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=CreateSerializer, responses={201: CollectionSerializer})
    def post(self, request):
        ser = CreateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        project, qs = selection(request, ser.validated_data)
        try:
            collection = services.create_collection(
                project,
                request.user,
                ser.validated_data["name"],
                qs,
                ser.validated_data.get("description", ""),
            )
        except ValidationError as exc:
            raise as_api_error(exc) from None
        return Response(CollectionSerializer(collection).data, status=status.HTTP_201_CREATED)


class CollectionDetail(generics.RetrieveDestroyAPIView):
    serializer_class = CollectionSerializer
    queryset = Collection.objects.none()

    def get_object(self):
        return collection_for(self.request.user, self.kwargs["pk"], owner=self.request.method == "DELETE")


class Snapshot(APIView):
    """A new frozen version from a project selection (earlier versions never change)."""

    @extend_schema(request=SnapshotSerializer, responses={201: VersionSerializer})
    def post(self, request, pk: int):
        collection = collection_for(request.user, pk, owner=True)
        ser = SnapshotSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        _project, qs = selection(request, ser.validated_data)
        try:
            version = services.snapshot(collection, request.user, qs, ser.validated_data.get("note", ""))
        except ValidationError as exc:
            raise as_api_error(exc) from None
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)


class Share(APIView):
    """POST shares with users (and/or sets public); DELETE ?user=NAME revokes at once."""

    @extend_schema(request=ShareSerializer, responses={200: CollectionSerializer})
    def post(self, request, pk: int):
        collection = collection_for(request.user, pk, owner=True)
        ser = ShareSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            services.share(collection, ser.validated_data["users"], ser.validated_data["public"])
        except ValidationError as exc:
            raise as_api_error(exc) from None
        return Response(CollectionSerializer(collection).data)

    @extend_schema(parameters=[OpenApiParameter("user", str)], responses={200: CollectionSerializer})
    def delete(self, request, pk: int):
        collection = collection_for(request.user, pk, owner=True)
        services.revoke(collection, request.query_params.get("user", ""))
        return Response(CollectionSerializer(collection).data)


class TrainingCollectionSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="collection.name", read_only=True)
    owner = serializers.CharField(source="collection.owner.username", read_only=True)
    pinned_version = serializers.IntegerField(source="pinned_version.number", default=None, read_only=True)
    collection = serializers.IntegerField(source="collection_id", read_only=True)

    class Meta:
        model = TrainingCollection
        fields = ["id", "collection", "name", "owner", "pinned_version", "added_at"]
        read_only_fields = fields


class UseSerializer(serializers.Serializer):
    collection = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    version = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**31 - 1,
        help_text="pin a version (default: always the latest)",
    )


class ProjectTrainingCollections(generics.ListAPIView):
    """Shared collections this project adds to its training data."""

    serializer_class = TrainingCollectionSerializer
    queryset = TrainingCollection.objects.none()
    pagination_class = None

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["slug"])
        return project.training_collections.select_related("collection__owner", "pinned_version")

    @extend_schema(request=UseSerializer, responses={201: TrainingCollectionSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        ser = UseSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        collection = collection_for(request.user, ser.validated_data["collection"])
        version = None
        if ser.validated_data.get("version"):
            version = collection.versions.filter(number=ser.validated_data["version"]).first()
            if version is None:
                raise APIValidationError({"version": ["No such version of this collection."]})
        try:
            use = services.use_for_training(project, collection, request.user, version)
        except ValidationError as exc:
            raise as_api_error(exc) from None
        return Response(TrainingCollectionSerializer(use).data, status=status.HTTP_201_CREATED)


class ProjectTrainingCollectionDetail(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug: str, pk: int):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        services.stop_using(project, pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CollectionExport(APIView):
    """A version of the collection (`?version=N`, default latest) as a .zip."""

    @extend_schema(
        parameters=[OpenApiParameter("version", int), OpenApiParameter("layout", str)],
        responses={(200, "application/zip"): bytes},
    )
    def get(self, request, pk: int):
        import tempfile
        from pathlib import Path

        from django.http import FileResponse, Http404

        from webapp.collections.export import export_version
        from webapp.datasets.export import ExportError

        collection = collection_for(request.user, pk)
        number = request.query_params.get("version")
        version = (
            collection.versions.filter(number=number).first()
            if number and number.isdigit()
            else collection.latest
        )
        if version is None:
            raise Http404("No such version.")
        tmp = Path(tempfile.mkdtemp(prefix="ionsieve-dl-")) / "c.zip"
        try:
            export_version(version, tmp, request.query_params.get("layout") or None)
        except ExportError as exc:
            raise APIValidationError({"detail": str(exc)}) from None
        response = FileResponse(
            open(tmp, "rb"),  # noqa: SIM115 - FileResponse closes it
            as_attachment=True,
            filename=f"collection-{collection.pk}-v{version.number}.zip",
            content_type="application/zip",
        )
        tmp.unlink()
        return response
