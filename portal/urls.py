from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("", views.search_page, name="search"),
    # <path:>: a name with a slash (the admin refuses new ones) still has a page, so a
    # search that finds it never fails to link it.
    path("packages/<path:name>/", views.package_detail, name="package"),
]
