module example.com/benchgo

go 1.19
