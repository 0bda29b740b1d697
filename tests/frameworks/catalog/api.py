"""Django REST framework: viewsets whose querysets are built at import time or in get_queryset()."""

from rest_framework import routers, serializers, viewsets

from .models import Author, Book, Publisher


class AuthorBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Author
        fields = ["id", "name"]


class BookSerializer(serializers.ModelSerializer):
    author = AuthorBriefSerializer()

    class Meta:
        model = Book
        fields = ["id", "title", "author"]


class BookBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Book
        fields = ["id", "title"]


class AuthorSerializer(serializers.ModelSerializer):
    books = BookBriefSerializer(many=True)
    display = serializers.SerializerMethodField()

    class Meta:
        model = Author
        fields = ["id", "name", "books", "display"]

    def get_display(self, author):
        return f"{author.name} ({author.publisher.name})"


class BookViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Book.objects.all()
    serializer_class = BookSerializer


class PublisherSerializer(serializers.ModelSerializer):
    class Meta:
        model = Publisher
        fields = ["id", "name"]


class ImprintedBookSerializer(serializers.ModelSerializer):
    imprint = PublisherSerializer()

    class Meta:
        model = Book
        fields = ["id", "title", "imprint"]


class AuthorCatalogueSerializer(serializers.ModelSerializer):
    catalogue = ImprintedBookSerializer(many=True, source="books")

    class Meta:
        model = Author
        fields = ["id", "name", "catalogue"]


class AuthorViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuthorSerializer

    def get_queryset(self):
        return Author.objects.active()


class VisibleBookViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = BookSerializer

    def get_queryset(self):
        return Book.objects.visible()


class AuthorCatalogueViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Author.objects.prefetch_related("books")
    serializer_class = AuthorCatalogueSerializer


router = routers.DefaultRouter()
router.register("books", BookViewSet, basename="book")
router.register("authors", AuthorViewSet, basename="author")
router.register("visible-books", VisibleBookViewSet, basename="visible-book")
router.register("author-catalogue", AuthorCatalogueViewSet, basename="author-catalogue")


class AuthorModesViewSet(viewsets.ReadOnlyModelViewSet):
    """One viewset, two modes: ?brief=1 does not read the books it prefetches."""

    def get_queryset(self):
        queryset = Author.objects.active()
        return queryset.select_related("publisher").prefetch_related("books")

    def get_serializer_class(self):
        return AuthorBriefSerializer if self.request.query_params.get("brief") else AuthorSerializer


router.register("author-modes", AuthorModesViewSet, basename="author-mode")
