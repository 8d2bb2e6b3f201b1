module webtoon.local/pause

go 1.22
