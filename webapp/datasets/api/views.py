"""Datasets, images, labels and thumbnails over REST; every object goes through the access helpers."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.datasets import gallery, labels, media, storage
from webapp.datasets.access import dataset_for, image_for
from webapp.datasets.api.label_history import label_source
from webapp.datasets.api.pagination import GalleryPagination
from webapp.datasets.api.serializers import (
    MAX_BULK,
    BulkLabelResultSerializer,
    BulkLabelSerializer,
    CountsSerializer,
    DatasetSerializer,
    ImageSerializer,
    LabelSerializer,
)
from webapp.datasets.models import IonImage
from webapp.projects.access import project_for
from webapp.projects.models import Project, Role, Task


class DatasetDetail(generics.RetrieveDestroyAPIView):
    serializer_class = DatasetSerializer

    def get_object(self):
        need = Role.OWNER if self.request.method == "DELETE" else Role.VIEWER
        return dataset_for(self.request.user, self.kwargs["pk"], need=need)

    def perform_destroy(self, instance):
        storage.delete_dataset(instance)


GALLERY_PARAMS = [
    OpenApiParameter(
        "ordering",
        str,
        enum=list(gallery.ORDERINGS),
        description="-probability (default), probability, uncertainty, mz, -mz, index, name",
    ),
]


def schema_context(project: Project) -> dict:
    """What ImageSerializer needs to know of the project's label schema."""
    return {"classes": project.classes, "multilabel": project.task == Task.MULTILABEL}


def with_my_label(im: IonImage, user) -> IonImage:
    """The image re-read with the caller's own label, for one-image answers."""
    return (
        gallery.with_my_label(IonImage.objects.filter(pk=im.pk), user)
        .select_related("dataset", "prediction_version")
        .get()
    )


class GalleryFilterBackend(DjangoFilterBackend):
    """No FilterSet when no filter is asked: building one (a form of 13 fields, deep-copied per
    request) was a sixth of an unfiltered gallery page's time."""

    def filter_queryset(self, request, queryset, view):
        if not set(request.query_params) & set(gallery.ImageFilter.base_filters):
            return queryset
        return super().filter_queryset(request, queryset, view)


class ImageList(generics.ListAPIView):
    """Images of a dataset (or of a whole project), sorted and filtered in the database."""

    serializer_class = ImageSerializer
    queryset = IonImage.objects.none()  # for the schema; get_queryset scopes it
    filter_backends = [GalleryFilterBackend]
    filterset_class = gallery.ImageFilter
    pagination_class = GalleryPagination

    @property
    def across_datasets(self) -> bool:
        """A project's gallery (images of several datasets), not one dataset's."""
        return "slug" in self.kwargs

    def project_and_queryset(self):
        if self.across_datasets:
            project = project_for(self.request.user, self.kwargs["slug"])
            qs = gallery.project_images(project)
            if self.unfiltered_page():
                self.paginator.known_count = gallery.project_image_count(project)
        else:
            dataset = dataset_for(self.request.user, self.kwargs["pk"])
            project, qs = dataset.project, IonImage.objects.filter(dataset=dataset)
            if self.unfiltered_page():
                # save_images (webapp/ingestion/rows.py) keeps image_count equal to the rows.
                self.paginator.known_count = dataset.image_count
        return project, qs

    def unfiltered_page(self) -> bool:
        """A page of the whole gallery: its total is the datasets' image counts, no COUNT(*)."""
        return self.paginator is not None and not set(self.request.query_params) & set(
            gallery.ImageFilter.base_filters
        )

    def get_queryset(self):
        # The listing's joins (gallery.for_listing) come with the page's rows (the paginator),
        # not here: counts, select-all ids and the page's sort run on the images table alone.
        project, qs = self.project_and_queryset()
        self.project = project
        return gallery.ordered(
            qs, self.request.query_params.get("ordering"), across_datasets=self.across_datasets
        )

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        if page is not None:
            gallery.attach_my_labels(page, self.request.user)
        return page

    def get_serializer_context(self):
        ctx = super().get_serializer_context()
        project = getattr(self, "project", None)
        return {**ctx, **schema_context(project)} if project is not None else ctx

    @extend_schema(parameters=GALLERY_PARAMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ImageCounts(ImageList):
    """How many images each gallery filter shows (with the other filters applied)."""

    pagination_class = None

    @extend_schema(parameters=GALLERY_PARAMS, responses={200: CountsSerializer})
    def get(self, request, *args, **kwargs):
        qs = self.filter_queryset(self.get_queryset())
        return Response(
            gallery.counts(
                qs.order_by(),
                request.user,
                self.project.classes,
                multilabel=self.project.task == Task.MULTILABEL,
            )
        )


class ImageDetail(generics.RetrieveAPIView):
    serializer_class = ImageSerializer

    def get_object(self):
        im = image_for(self.request.user, self.kwargs["pk"])
        self.project = im.dataset.project
        return with_my_label(im, self.request.user)

    def get_serializer_context(self):
        ctx = super().get_serializer_context()
        project = getattr(self, "project", None)
        return {**ctx, **schema_context(project)} if project is not None else ctx


class IdsSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="in gallery order")
    count = serializers.IntegerField(help_text="how many images match the filters")
    truncated = serializers.BooleanField(help_text=f"more than {MAX_BULK} match: only the first are listed")


class ImageIds(ImageList):
    """The ids of every image matching the gallery filters: the gallery's "select all"."""

    pagination_class = None

    @extend_schema(parameters=GALLERY_PARAMS, responses={200: IdsSerializer})
    def get(self, request, *args, **kwargs):
        qs = self.filter_queryset(self.get_queryset())
        ids = list(qs.values_list("pk", flat=True)[: MAX_BULK + 1])
        return Response(
            {
                "ids": ids[:MAX_BULK],
                "count": len(ids) if len(ids) <= MAX_BULK else qs.count(),
                "truncated": len(ids) > MAX_BULK,
            }
        )


class ImageLabel(APIView):
    """PUT sets the caller's label on one image; DELETE removes it."""

    @extend_schema(request=LabelSerializer, responses={200: ImageSerializer})
    def put(self, request, pk: int):
        im = image_for(request.user, pk, need=Role.ANNOTATOR)
        ser = LabelSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        unsure = ser.validated_data["unsure"]
        try:
            stored = labels.set_labels(
                im.dataset.project,
                [im],
                request.user,
                ser.validated_data.get("label"),
                unsure=unsure,
                source=label_source(request),
            )
        except labels.LabelError as exc:
            raise ValidationError({"label": [str(exc)]}) from None
        return Response(_image_json(request, im, stored, unsure))

    @extend_schema(request=None, responses={200: ImageSerializer})
    def delete(self, request, pk: int):
        im = image_for(request.user, pk, need=Role.ANNOTATOR)
        labels.remove_labels(im.dataset.project, [im], request.user, source=label_source(request))
        return Response(_image_json(request, im, None, False))


def _image_json(request, im: IonImage, my_label: str | None, my_unsure: bool) -> dict:
    """The image as GET /api/images/ID/ then gives it, from the row in hand (no re-read): the
    label write set its consensus fields as committed; the caller's label is what was stored."""
    im.my_label, im.my_unsure = my_label, my_unsure
    return ImageSerializer(im, context={"request": request, **schema_context(im.dataset.project)}).data


class BulkLabels(APIView):
    """Label (or unlabel) many images of one project at once."""

    @extend_schema(request=BulkLabelSerializer, responses={200: BulkLabelResultSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        ser = BulkLabelSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        images = list(IonImage.objects.filter(pk__in=d["images"], dataset__project=project))
        if len(images) != len(set(d["images"])):
            raise Http404("Some images are not in this project.")
        try:
            if d["remove"]:
                n = labels.remove_labels(project, images, request.user, source=label_source(request))
                return Response({"removed": n})
            if d["mode"] != "set":
                if project.task != Task.MULTILABEL:
                    raise ValidationError(
                        {"mode": ["Adding or removing one class is for multi-label projects."]}
                    )
                name = d.get("label")
                n = labels.change_class(
                    project,
                    images,
                    request.user,
                    name[0] if isinstance(name, list) and len(name) == 1 else name,
                    add=d["mode"] == "add",
                    source=label_source(request),
                )
                return Response({"changed": n, "mode": d["mode"]})
            value = labels.set_labels(
                project,
                images,
                request.user,
                d.get("label"),
                unsure=d["unsure"],
                source=label_source(request),
            )
        except labels.LabelError as exc:
            raise ValidationError({"label": [str(exc)]}) from None
        return Response({"labelled": len(images), "label": value})


@extend_schema(responses={(200, "image/png"): bytes})
@api_view(["GET"])
def thumbnail(request, pk: int):
    """A thumbnail PNG, permission-checked, cached by the browser (ETag + immutable URL).
    Galleries use the signed `thumbnail_url` instead (no database query per tile)."""
    im = image_for(request.user, pk)
    path = im.dataset.thumb_path(im.index)
    if not path.exists():
        raise Http404("No thumbnail yet.")
    max_age = 31536000 if request.GET.get("r") else 300
    return media.serve_file(
        request,
        path,
        "image/png",
        f"private, max-age={max_age}" + (", immutable" if max_age > 300 else ""),
        etag=media.etag_for(path, im.pk, im.dataset.revision),
    )


class ProjectExport(ImageList):
    """The project's images (with the gallery filters, `?dataset=ID` for one) as a .zip."""

    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter("layout", str, enum=["gs", "flat", "channels"]),
            OpenApiParameter("arrays", bool),
        ],
        responses={(200, "application/zip"): bytes},
    )
    def get(self, request, *args, **kwargs):
        import tempfile
        from pathlib import Path

        from webapp.datasets.export import ExportError, export_zip

        qs = self.filter_queryset(self.get_queryset()).order_by()
        layout = request.query_params.get("layout") or None
        tmp = Path(tempfile.mkdtemp(prefix="ionsieve-dl-")) / "export.zip"
        try:
            export_zip(
                self.project,
                IonImage.objects.filter(pk__in=qs.values("pk")),
                tmp,
                layout,
                with_arrays=request.query_params.get("arrays") in ("1", "true"),
            )
        except ExportError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        response = FileResponse(
            open(tmp, "rb"),  # noqa: SIM115 - FileResponse closes it
            as_attachment=True,
            filename=f"{self.project.slug}.zip",
            content_type="application/zip",
        )
        tmp.unlink()  # the open handle keeps the data readable until the response is sent
        return response
