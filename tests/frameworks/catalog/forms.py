from django import forms

from .models import Book, Copy


class CopyForm(forms.ModelForm):
    book = forms.ModelChoiceField(queryset=Book.objects.all())

    class Meta:
        model = Copy
        fields = ["book", "barcode"]
