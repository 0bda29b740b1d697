"""Django REST framework: viewsets whose querysets are built at import time or in get_queryset()."""

from rest_framework import routers, serializers, viewsets

from .models import Author, Book


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


class AuthorViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuthorSerializer

    def get_queryset(self):
        return Author.objects.active()


class VisibleBookViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = BookSerializer

    def get_queryset(self):
        return Book.objects.visible()


router = routers.DefaultRouter()
router.register("books", BookViewSet, basename="book")
router.register("authors", AuthorViewSet, basename="author")
router.register("visible-books", VisibleBookViewSet, basename="visible-book")


class AuthorModesViewSet(viewsets.ReadOnlyModelViewSet):
    """One viewset, two modes: ?brief=1 does not read the books it prefetches."""

    def get_queryset(self):
        queryset = Author.objects.active()
        return queryset.select_related("publisher").prefetch_related("books")

    def get_serializer_class(self):
        return AuthorBriefSerializer if self.request.query_params.get("brief") else AuthorSerializer


router.register("author-modes", AuthorModesViewSet, basename="author-mode")
