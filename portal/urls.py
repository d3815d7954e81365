from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("", views.search_page, name="search"),
    path("packages/<str:name>/", views.package_detail, name="package"),
]
